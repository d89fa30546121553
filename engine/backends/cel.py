"""The cel backend: in-betweens that take flat cel art apart and move its parts along arcs.

No weights, no GPU: held backgrounds stay exactly in place, limbs swing about their joints, a
figure that leaps is carried, not faded, on one arc through all the keys of a multi-key shot, a
key that hides the figure behind scenery is drawn across from the keys around it, and sketches
pose the parts (docs/cel.md). Art that is not flat cel, or a segment whose parts cannot be matched
with confidence, goes to the RIFE backend, and the result's warnings and provenance say so.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from ..api import Backend, CancelToken, EngineError, GenerationSettings, InbetweenTask, ProgressFn
from ..cel.hidden_keys import BridgedSegment, bridge, hidden_key
from ..cel.interpolator import CelConfig, CelInterpolator, CelSegment, NotCelArt, PartsUnmatched, check_keys

#: How many analysed key pairs the backend keeps (a segment, the one before and the one after).
PREPARED_PAIRS = 4


def _fingerprint(key: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(key).tobytes() + str(key.shape).encode(), digest_size=16).digest()


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
        #: Key pairs already taken apart (without sketches), newest last: a multi-key shot's segments
        #: come in order, so each pair is analysed once though each segment also looks at its neighbours.
        self._prepared: OrderedDict[tuple[bytes, bytes], CelSegment | NotCelArt] = OrderedDict()

    def _take_apart(self, key_a: np.ndarray, key_b: np.ndarray, cancel: CancelToken) -> CelSegment | NotCelArt:
        """The pair's analysis without sketches (or why it is not cel art), from the cache when the
        last segments made it."""
        pair = (_fingerprint(key_a), _fingerprint(key_b))
        if pair not in self._prepared:
            try:
                self._prepared[pair] = self.interpolator.prepare(key_a, key_b, None, cancel)
            except NotCelArt as exc:
                self._prepared[pair] = exc
            while len(self._prepared) > PREPARED_PAIRS:
                self._prepared.popitem(last=False)
        return self._prepared[pair]

    def _neighbour(self, key_a: np.ndarray | None, key_b: np.ndarray | None, cancel: CancelToken) -> CelSegment | None:
        """A neighbouring segment of a multi-key shot, taken apart, or None (none, or not cel art)."""
        if key_a is None or key_b is None or key_a.shape != key_b.shape:
            return None
        found = self._take_apart(key_a, key_b, cancel)
        return None if isinstance(found, NotCelArt) else found

    def _across_hidden_key(self, task: InbetweenTask, sides: str, cancel: CancelToken) -> BridgedSegment | None:
        """The segment drawn from the pair across whichever of its keys (`sides`: "a", "b", both)
        hides the figure, when the shot has a key beyond it (hidden_keys.py); else None."""
        for side in sides:
            if side == "b" and task.key_after is not None and task.tau_after is not None:
                across = self._neighbour(task.key_start, task.key_after, cancel)
                key_tau, start, end, key = 1.0 / task.tau_after, 0.0, 1.0 / task.tau_after, task.key_end
            elif side == "a" and task.key_before is not None and task.tau_before is not None:
                across = self._neighbour(task.key_before, task.key_end, cancel)
                key_tau = -task.tau_before / (1.0 - task.tau_before)
                start, end, key = key_tau, 1.0, task.key_start
            else:
                continue
            if across is not None and hidden_key(across) is None:
                found = bridge(across, key_tau, key, start, end)
                if found is not None:
                    return found
        return None

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
            if task.sketches:
                segment = self.interpolator.prepare(task.key_start, task.key_end, task.sketches, cancel)
            else:
                segment = self._take_apart(task.key_start, task.key_end, cancel)
                if isinstance(segment, NotCelArt):
                    raise segment
        except PartsUnmatched as exc:  # perhaps one key hides the figure: try across either key
            segment = None if task.sketches else self._across_hidden_key(task, "ba", cancel)
            if segment is None:
                return self._by_flow(task, progress, cancel, str(exc))
        except NotCelArt as exc:
            return self._by_flow(task, progress, cancel, str(exc))
        hidden = hidden_key(segment) if isinstance(segment, CelSegment) and not task.sketches else None
        segment = (self._across_hidden_key(task, hidden, cancel) if hidden else None) or segment
        if isinstance(segment, CelSegment):
            before = self._neighbour(task.key_before, task.key_start, cancel)
            after = self._neighbour(task.key_end, task.key_after, cancel)
            segment.follow_keys(before, task.tau_before, after, task.tau_after)
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
