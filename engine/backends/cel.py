"""The cel backend: in-betweens that take flat cel art apart and move its parts along arcs.

No weights, no GPU: held backgrounds stay exactly in place, limbs swing about their joints, a
figure that leaps is carried, not faded, and sketches pose the parts (docs/cel.md). Art that is not
flat cel, or a segment whose parts cannot be matched with confidence, goes to the RIFE backend,
and the result's warnings and provenance say so.
"""

from __future__ import annotations

from ..api import Backend, CancelToken, EngineError, GenerationSettings, InbetweenTask, ProgressFn
from ..cel.interpolator import CelConfig, CelInterpolator, NotCelArt, check_keys


def availability(settings: GenerationSettings) -> tuple[bool, str]:
    """Always ready: it needs only OpenCV, NumPy and SciPy, which the engine depends on."""
    return True, ""


def instance_key(settings: GenerationSettings) -> tuple:
    """Nothing is loaded, so one instance serves every setting."""
    return ()


class CelBackend(Backend):
    name = "cel"

    def __init__(self, settings: GenerationSettings, config: CelConfig | None = None) -> None:
        self.settings = settings
        self.interpolator = CelInterpolator(config)
        self._rife = None
        self.last_method = "cel"
        self.last_report: dict = {}

    def _fallback(self):
        """The RIFE backend, built on first need (its network loads once)."""
        if self._rife is None:
            from .rife import RifeBackend
            from .rife import availability as rife_availability

            ok, reason = rife_availability(self.settings)
            if not ok:
                return None, reason
            self._rife = RifeBackend(self.settings)
        return self._rife, ""

    def interpolate(self, task: InbetweenTask, progress: ProgressFn, cancel: CancelToken) -> list:
        taus = [float(t) for t in task.taus]
        check_keys(task.key_start, task.key_end)
        for tau in taus:
            if not 0.0 < tau < 1.0:
                raise EngineError(f"tau must be strictly between 0 and 1 (the keys themselves), got {tau}")
        cancel.check()
        progress("encode", 0.0, "taking the keyframes apart into cels")
        try:
            segment = self.interpolator.prepare(task.key_start, task.key_end, task.sketches, cancel)
        except NotCelArt as exc:
            return self._by_flow(task, progress, cancel, str(exc))
        self.last_method = "cel"
        self.last_report = segment.report
        images = []
        for i, tau in enumerate(taus):
            cancel.check()
            images.append(segment.inbetween(tau))
            progress("post", (i + 1) / len(taus), f"in-between {i + 1}/{len(taus)} (tau {tau:.3f})")
        return images

    def _by_flow(self, task: InbetweenTask, progress: ProgressFn, cancel: CancelToken, why: str) -> list:
        rife, reason = self._fallback()
        if rife is None:
            raise EngineError(f"the cel in-betweener cannot take this segment apart ({why}) and RIFE is not available: {reason}")
        message = f"cel in-betweener: {why}; this segment was drawn by RIFE instead"
        if task.sketches:
            message += " (RIFE does not follow sketches)"
        task.warnings.append(message)
        self.last_method = "rife"
        self.last_report = {"fallback": why}
        return rife.interpolate(task, progress, cancel)

    def describe(self) -> dict:
        info = {"backend": self.name, "method": self.last_method, **self.last_report}
        if self.last_method == "rife" and self._rife is not None:
            info["rife"] = self._rife.describe()
        return info
