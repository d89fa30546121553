"""The methods compared: predictions made here through the engine's Python API (any backend in the
engine registry, e.g. rife, tooncrafter, cel), the plain cross-fade baseline, or frames already on
disk (`NAME=DIR`, laid out as <DIR>/<case id>/<ground-truth file name>)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .cases import Case, CaseError, load_rgb

CROSSFADE = "crossfade"


class MethodUnavailable(Exception):
    """The method cannot run here; the message says why (shown as 'not computed' in the table)."""


def crossfade(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """round((1 - t) a + t b), the baseline every figure is read against."""
    return np.clip(np.round((1 - t) * a.astype(np.float64) + t * b.astype(np.float64)), 0, 255).astype(np.uint8)


class Method:
    name: str
    #: Warnings the method gave per case (case id -> messages), shown under the table.
    warnings: dict[str, list[str]]

    def predict(self, case: Case) -> list[np.ndarray]:
        raise MethodUnavailable(f"{type(self).__name__} draws nothing")


class Crossfade(Method):
    name = CROSSFADE

    def predict(self, case: Case) -> list[np.ndarray]:
        return [crossfade(case.start, case.end, t) for t in case.gt_t]


class FolderMethod(Method):
    def __init__(self, name: str, root: str | Path) -> None:
        self.name, self.root = name, Path(root)
        if not self.root.is_dir():
            raise MethodUnavailable(f"{self.root}: no such folder of predictions")

    def predict(self, case: Case) -> list[np.ndarray]:
        frames = []
        for name in case.gt_names:
            path = self.root / case.case_id / name
            if not path.exists():
                raise CaseError(f"{self.name}: prediction {path} is missing")
            frames.append(load_rgb(path))
        return frames


def _rgba(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[..., :3], np.full(image.shape[:2] + (1,), 255, np.uint8)], -1)


class EngineMethod(Method):
    """Generates the in-betweens with an engine backend: keys at frames 0 and g, one drawing per frame."""

    def __init__(self, backend: str, seed: int = 123) -> None:
        from engine.api import EngineError, GenerationSettings
        from engine.backends import availability

        self.name, self.warnings = backend, {}
        try:
            self.settings = GenerationSettings(backend=backend, seed=seed)
        except (EngineError, ValueError) as exc:
            raise MethodUnavailable(f"backend {backend!r} is not registered in this engine ({exc})") from None
        ok, reason = availability(backend, self.settings)
        if not ok:
            raise MethodUnavailable(f"backend {backend} is not available: {reason}")

    def predict(self, case: Case) -> list[np.ndarray]:
        from engine.api import Keyframe
        from engine.pipeline import build_request, generate

        settings = self.settings
        if case.prompt and case.prompt != settings.prompt:
            from dataclasses import replace

            settings = replace(settings, prompt=case.prompt)
        request = build_request(
            [Keyframe(0, _rgba(case.start), f"{case.case_id} start"), Keyframe(case.gap, _rgba(case.end), f"{case.case_id} end")],
            settings=settings,
        )
        result = generate(request)
        if result.warnings:
            self.warnings[case.case_id] = list(result.warnings)
        return [np.ascontiguousarray(result.frames[k].image[..., :3]) for k in range(1, case.gap)]


def make_method(spec: str) -> Method:
    """'crossfade', a backend name, or NAME=DIR of predictions on disk."""
    if "=" in spec:
        name, root = spec.split("=", 1)
        return FolderMethod(name, root)
    if spec == CROSSFADE:
        return Crossfade()
    return EngineMethod(spec)
