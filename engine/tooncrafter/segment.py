"""The segment strategy: how a segment's requested in-betweens come out of ToonCrafter passes.

Runtime-independent: it asks a runner (runtimes/runner.py, PyTorch or ONNX Runtime) for model
passes and never touches a tensor. One model pass draws T = 16 frames, keyframes included, at
tau = k/15 on the model canvas. For a segment the strategy fits the keys (and sketches) onto the
canvas, runs a pass, brings the frames back to the keys' size and transparency, and answers every
requested tau:
- a tau on a model frame is that frame;
- any other tau comes from the `between_model_frames` interpolator (RIFE by default) between the
  two neighbouring model frames (the artist's own keys at the ends), or, in the "quality" preset,
  from a second generative pass between those two frames (finer model frames; the interpolator
  only between those).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..api import Backend, CancelToken, EngineError, GenerationSettings, InbetweenTask, ProgressFn, no_progress
from ..core.planning import nearest_model_frame
from .fitting import choose_key_colour, composite_on, fit_to_canvas, has_transparency, key_out
from .networks.config import ToonCrafterConfig

#: Distance (in tau) under which a requested tau counts as sitting on a model frame.
TAU_EPSILON = 1e-6

#: The interpolators that can draw the taus between two model frames, by name: module and Backend
#: class, constructed with the task's settings. The one seam to switch (e.g. to the cel in-betweener).
BETWEEN_MODEL_FRAMES = {
    "rife": ("engine.backends.rife", "RifeBackend"),
    "cel": ("engine.backends.cel", "CelBackend"),
}
DEFAULT_BETWEEN_MODEL_FRAMES = "rife"


class PassRunner(Protocol):
    """What the strategy needs from a runtime's runner."""

    @property
    def config(self) -> ToonCrafterConfig: ...

    def run_pass(
        self,
        s: GenerationSettings,
        first: np.ndarray,
        last: np.ndarray,
        sketches: dict[int, np.ndarray],
        report: Callable[[str, float, str], None],
        cancel: CancelToken,
    ) -> list[np.ndarray]: ...


@dataclass
class ModelFrames:
    """One pass's frames back at the keys' size: index k sits at taus[k]."""

    taus: list[float]
    images: list[np.ndarray]


class SegmentStrategy:
    """Answers a segment's taus from model passes of `runner` (see the module docstring)."""

    def __init__(self, runner: PassRunner, between_model_frames: str = DEFAULT_BETWEEN_MODEL_FRAMES) -> None:
        if between_model_frames not in BETWEEN_MODEL_FRAMES:
            raise EngineError(
                f"unknown interpolator {between_model_frames!r} between model frames: "
                f"choose one of {', '.join(BETWEEN_MODEL_FRAMES)}"
            )
        self.runner = runner
        self.between_model_frames = between_model_frames
        self._interpolator: Backend | None = None

    @property
    def frames(self) -> int:
        return self.runner.config.frames

    def interpolate(self, task: InbetweenTask, progress: ProgressFn, cancel: CancelToken) -> list[np.ndarray]:
        key_a, key_b = task.key_start, task.key_end
        if key_a.shape != key_b.shape:
            raise EngineError(
                f"keyframes differ in size: {key_a.shape[1]}x{key_a.shape[0]} and {key_b.shape[1]}x{key_b.shape[0]}"
            )
        taus = [float(t) for t in task.taus]
        for tau in taus:
            if not 0.0 < tau < 1.0:
                raise EngineError(f"tau must be strictly between 0 and 1 (the keys themselves), got {tau}")
        cancel.check()
        cfg = self.runner.config
        t = cfg.frames
        height, width = key_a.shape[:2]
        fit = fit_to_canvas(width, height, cfg.width, cfg.height)
        transparent = has_transparency(key_a, key_b)
        key_colour, key_distance = choose_key_colour(key_a, key_b) if transparent else (None, 0.0)

        def to_canvas(image: np.ndarray) -> np.ndarray:
            rgb = composite_on(image, key_colour) if transparent else image[..., :3]
            return fit.to_canvas(np.ascontiguousarray(rgb))

        def from_canvas(rgb: np.ndarray) -> np.ndarray:
            back = fit.from_canvas(rgb)
            if transparent:
                return key_out(back, key_colour, key_distance)
            return np.concatenate([back, np.full(back.shape[:2] + (1,), 255, np.uint8)], axis=-1)

        sketches: dict[int, np.ndarray] = {}
        sketch_taus: dict[int, float] = {}
        for tau, sketch in sorted(task.sketches.items()):
            if sketch.shape[:2] != key_a.shape[:2]:
                raise EngineError(
                    f"sketch at tau {tau:.3f} is {sketch.shape[1]}x{sketch.shape[0]}, the keyframes are {width}x{height}"
                )
            model_frame = nearest_model_frame(tau, t)
            if model_frame in sketch_taus:
                task.warnings.append(
                    f"the sketches at {sketch_taus[model_frame]:.0%} and {tau:.0%} of the way between the keys "
                    f"both land on model frame {model_frame} of {t}; only the one at {tau:.0%} is used"
                )
            sketch_taus[model_frame] = tau
            sketches[model_frame] = fit.to_canvas(sketch, pad="zero")

        settings = task.settings
        passes = 1 + (self.extra_passes_needed(taus) if settings.preset == "quality" else 0)
        reporter = PassProgress(progress, passes)
        canvas_frames = self.runner.run_pass(settings, to_canvas(key_a), to_canvas(key_b), sketches, reporter.stage, cancel)
        grid = ModelFrames([k / (t - 1) for k in range(t)], [key_a] + [from_canvas(f) for f in canvas_frames[1:-1]] + [key_b])
        if settings.preset == "quality":
            grid = self._refine(settings, grid, canvas_frames, taus, to_canvas, from_canvas, reporter, cancel)
        return self._answer(settings, grid, taus, reporter, cancel)

    def extra_passes_needed(self, taus: Sequence[float]) -> int:
        return len({k for k in (self.interval(tau) for tau in taus) if k is not None})

    def interval(self, tau: float) -> int | None:
        """Index k of the model-frame interval [k, k+1] holding an off-grid tau (None: on a frame)."""
        position = tau * (self.frames - 1)
        if abs(position - round(position)) <= TAU_EPSILON * (self.frames - 1):
            return None
        return int(math.floor(position))

    def _refine(self, settings, grid, canvas_frames, taus, to_canvas, from_canvas, reporter, cancel) -> ModelFrames:
        """Quality preset: a generative pass between the model frames around each off-grid tau."""
        t = self.frames
        taus_out, images = list(grid.taus), list(grid.images)
        for k in sorted({k for k in (self.interval(tau) for tau in taus) if k is not None}):
            reporter.next_pass()
            first = canvas_frames[k] if k > 0 else to_canvas(grid.images[0])
            last = canvas_frames[k + 1] if k + 1 < t - 1 else to_canvas(grid.images[-1])
            finer = self.runner.run_pass(settings, first, last, {}, reporter.stage, cancel)
            lo = k / (t - 1)
            for j in range(1, t - 1):
                taus_out.append(lo + j / ((t - 1) * (t - 1)))
                images.append(from_canvas(finer[j]))
        order = sorted(range(len(taus_out)), key=taus_out.__getitem__)
        return ModelFrames([taus_out[i] for i in order], [images[i] for i in order])

    def _answer(self, settings, grid: ModelFrames, taus: Sequence[float], reporter: "PassProgress", cancel) -> list:
        """Every requested tau: a grid frame when it sits on one, else the interpolator between its
        neighbours (one call per pair of neighbours, for all the taus between them)."""
        out: list[np.ndarray | None] = [None] * len(taus)
        between: dict[int, list[tuple[int, float]]] = {}
        for n, tau in enumerate(taus):
            i = int(np.searchsorted(grid.taus, tau))
            if i < len(grid.taus) and abs(grid.taus[i] - tau) <= TAU_EPSILON:
                out[n] = grid.images[i].copy()
            elif abs(grid.taus[i - 1] - tau) <= TAU_EPSILON:
                out[n] = grid.images[i - 1].copy()
            else:
                local = (tau - grid.taus[i - 1]) / (grid.taus[i] - grid.taus[i - 1])
                between.setdefault(i, []).append((n, local))
        done = len(taus) - sum(len(v) for v in between.values())
        reporter.post(done / len(taus), "placing the model frames")
        for i, wanted in sorted(between.items()):
            cancel.check()
            task = InbetweenTask(grid.images[i - 1], grid.images[i], [t for _, t in wanted], settings)
            for (n, _), image in zip(wanted, self.interpolator(settings).interpolate(task, no_progress, cancel)):
                out[n] = image
            done += len(wanted)
            reporter.post(done / len(taus), f"{done}/{len(taus)} in-betweens placed")
        return out

    def interpolator(self, settings: GenerationSettings) -> Backend:
        """The `between_model_frames` interpolator, built once."""
        if self._interpolator is None:
            module, cls = BETWEEN_MODEL_FRAMES[self.between_model_frames]
            self._interpolator = getattr(importlib.import_module(module), cls)(settings)
        return self._interpolator


class PassProgress:
    """Maps each pass's encode/denoise/decode progress onto the segment's 0..1 (placing the
    in-betweens, "post", takes the last few percent)."""

    WEIGHTS = {"load": (0.0, 0.0), "encode": (0.0, 0.05), "denoise": (0.05, 0.9), "decode": (0.9, 1.0)}
    PASSES_SHARE = 0.95

    def __init__(self, progress: ProgressFn, passes: int) -> None:
        self.progress = progress
        self.passes = max(passes, 1)
        self.current = 0

    def next_pass(self) -> None:
        self.current += 1

    def stage(self, stage: str, fraction: float, message: str) -> None:
        start, end = self.WEIGHTS.get(stage.split(" ")[0], (1.0, 1.0))
        within = start + (end - start) * min(max(fraction, 0.0), 1.0)
        overall = self.PASSES_SHARE * min((self.current + within) / self.passes, 1.0)
        prefix = f"pass {self.current + 1}/{self.passes}: " if self.passes > 1 else ""
        self.progress(stage, overall, prefix + message)

    def post(self, fraction: float, message: str) -> None:
        self.progress("post", self.PASSES_SHARE + (1 - self.PASSES_SHARE) * fraction, message)
