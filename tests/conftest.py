"""Shared fixtures: where the conformance data and the cartoon evaluation material live.

CI clones the repo with `shared/` beside it, so both are found relative to the checkout; tests that
need them skip with a visible reason when they are absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INBETWEENER_SHARED", REPO.parent / "shared"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not present (it sits beside the checkout in CI)")
    return path


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return _require(SHARED / "reference")


@pytest.fixture(scope="session")
def cartoon_dir() -> Path:
    return _require(SHARED / "cartoon")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return REPO / "samples"
