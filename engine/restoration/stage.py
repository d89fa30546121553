"""The pipeline stage "full-resolution restore": runs after a backend, before post-processing.

A backend that draws below the keys' size (ToonCrafter: a 512×320 canvas) declares the canvas it
drew on (`Backend.draws_at`). Its frames, enlarged to the keys' size, hold only the detail of the
fitted rectangle on that canvas; this stage takes them back to that resolution and restores them
from the keys (see detail.py), then keeps the keys' palette (palette.py).

Settings (GenerationSettings.restore_detail / keep_palette, each auto | on | off):
- restore_detail "auto": on when the keys are larger than the rectangle the backend drew at;
  backends drawing at the keys' own size (RIFE, cel) get their frames back untouched, bit for bit.
- keep_palette "auto": on while restoring, when the keys are flat-colour art; "on" snaps the
  in-betweens of any backend; "off" never.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..api import CancelToken, GenerationSettings, ProgressFn
from .detail import DetailRestorer
from .palette import Palette, extract_palette, snap_to_palette
from .pixels import resize, to_straight, to_working


@dataclass(frozen=True)
class RestorationPlan:
    """What the stage will do for one segment. drawn_size: (width, height) of the rectangle the
    backend drew the keys' area at (None: at the keys' own size)."""

    restore: bool
    palette: Palette | None
    drawn_size: tuple[int, int] | None

    @property
    def active(self) -> bool:
        return self.restore or self.palette is not None


def drawn_size(key_size: tuple[int, int], draws_at: tuple[int, int] | None) -> tuple[int, int] | None:
    """The rectangle (width, height) the keys' area occupies on a canvas of `draws_at`, fitted as
    the backends fit it (engine/tooncrafter/fitting.py: aspect kept, never cropped); None when the
    backend draws at the keys' size or larger."""
    if draws_at is None:
        return None
    from ..tooncrafter.fitting import fit_to_canvas

    fit = fit_to_canvas(key_size[0], key_size[1], draws_at[0], draws_at[1])
    if fit.fitted_width >= key_size[0] and fit.fitted_height >= key_size[1]:
        return None
    return fit.fitted_width, fit.fitted_height


def plan_restoration(settings: GenerationSettings, key_start: np.ndarray, key_end: np.ndarray,
                     draws_at: tuple[int, int] | None) -> RestorationPlan:
    key_size = (key_start.shape[1], key_start.shape[0])
    drawn = drawn_size(key_size, draws_at)
    restore = settings.restore_detail == "on" or (settings.restore_detail == "auto" and drawn is not None)
    palette = None
    if settings.keep_palette == "on" or (settings.keep_palette == "auto" and restore):
        found = extract_palette(key_start, key_end)
        if settings.keep_palette == "on" or found.is_flat_art:
            palette = found if len(found.colours) else None
    return RestorationPlan(restore, palette, drawn or key_size)


def restore_inbetweens(
    key_start: np.ndarray,
    key_end: np.ndarray,
    frames: Sequence[np.ndarray],
    taus: Sequence[float],
    settings: GenerationSettings,
    *,
    draws_at: tuple[int, int] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> list[np.ndarray]:
    """One segment's in-betweens (RGBA uint8 at the keys' size, as the backend returned them) ->
    the same restored. Frames come back unchanged (the very same arrays) when nothing applies."""
    plan = plan_restoration(settings, key_start, key_end, draws_at)
    frames = list(frames)
    if not plan.active or not frames:
        return frames
    if len(frames) != len(taus):
        raise ValueError(f"{len(frames)} frames for {len(taus)} taus")
    cancel = cancel or CancelToken()
    restorer = DetailRestorer(key_start, key_end, plan.drawn_size, plan.palette) if plan.restore else None
    out = []
    for n, (frame, tau) in enumerate(zip(frames, taus)):
        cancel.check()
        if progress is not None:
            progress("post", n / len(frames), f"restoring in-between {n + 1}/{len(frames)} from the keys")
        work = to_working(frame)
        if restorer is not None:
            restored = restorer.restore(resize(work, plan.drawn_size), float(tau)).image
        else:
            restored = snap_to_palette(work, plan.palette)
        out.append(to_straight(restored))
    if progress is not None:
        progress("post", 1.0, "in-betweens restored")
    return out
