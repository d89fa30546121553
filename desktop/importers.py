"""Starting a project from the artist's files: keyframe images, a PNG sequence or a layered PSD.

- Keyframe images: one key per file in name order, spaced so each segment has room for the
  in-betweens asked for (engine.core.planning.key_frames_for_count).
- PNG sequence (`walk_0001.png`, `walk_0009.png`, ...): the numbers are the timing, so each file is
  a key on the frame its number gives (relative to the first); repeated images are holds, not keys.
- Layered PSD: one layer (or group) per frame, bottom layer first. When every layer name carries a
  distinct frame number (as our own PSD export writes them) those numbers place the keys. The app's
  own PSD ('f0000 key', 'f0004 in-between', 'f0005 hold of f0004') comes back as it left: keys on the
  keys track, in-betweens (accepted) on the in-betweens track, holds as timing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.api import EngineError
from engine.core.planning import PlanningError, key_frames_for_count, plan_segment
from engine.core.protocol import MAX_JOB_PIXELS
from engine.imaging import check_declared_size, fit_into
from engine.imaging import read_image as engine_read_image

from .project import Drawing, InbetweenCell, KeyCell, Project, ProjectError, Timing

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last run of digits in a name
_OWN_LAYER = re.compile(r"^f(\d+) (key|in-between|hold of f\d+)$")  # engine.exports' layer names


@dataclass(frozen=True)
class ImportedKey:
    frame: int
    image: np.ndarray
    source: str
    kind: str = "key"  # "inbetween": a drawing between keys (from the app's own PSD)


def read_image(path: Path) -> np.ndarray:
    """An image file as RGBA uint8, with an error that names the file (engine.imaging's reader)."""
    try:
        return engine_read_image(path)
    except EngineError as exc:
        raise ProjectError(str(exc)) from None


def natural_key(path: Path):
    """Sort 'key2' before 'key10', as a person would."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", Path(path).name)]


def fit_to_first(keys: Sequence[ImportedKey]) -> list[ImportedKey]:
    """Bring every key to the first one's size (scaled to fit, padded, never cropped)."""
    height, width = keys[0].image.shape[:2]
    return [ImportedKey(k.frame, fit_into(k.image, width, height), k.source) for k in keys]


def check_same_size(keys: Sequence[ImportedKey]) -> None:
    sizes = {k.image.shape[:2] for k in keys}
    if len(sizes) > 1:
        first = keys[0]
        for k in keys[1:]:
            if k.image.shape[:2] != first.image.shape[:2]:
                h0, w0 = first.image.shape[:2]
                h1, w1 = k.image.shape[:2]
                raise ProjectError(
                    f"image sizes differ: {first.source} is {w0}×{h0} but {k.source} is {w1}×{h1}; "
                    "export every keyframe at the same canvas size"
                )


def keyframe_images(
    paths: Sequence[Path], inbetweens: int = 7, exposure: int = 1, fit: bool = False
) -> list[ImportedKey]:
    """One key per image, in natural name order, `inbetweens` drawings apart on `exposure`.

    Keys of different sizes are refused by name, unless `fit` brings them to the first one's size.
    """
    paths = sorted((Path(p) for p in paths), key=natural_key)
    if len(paths) < 2:
        raise ProjectError(f"choose at least two keyframe images (got {len(paths)})")
    try:
        frames = key_frames_for_count(len(paths), inbetweens, exposure)
    except PlanningError as exc:
        raise ProjectError(str(exc)) from None
    keys = [ImportedKey(f, read_image(p), p.name) for f, p in zip(frames, paths)]
    if fit:
        keys = fit_to_first(keys)
    check_same_size(keys)
    return keys


def sequence_files(folder_or_files: Path | Sequence[Path]) -> list[Path]:
    """The numbered images of a sequence: a folder's images, or the files given, by number."""
    if isinstance(folder_or_files, (str, Path)) and Path(folder_or_files).is_dir():
        files = [p for p in Path(folder_or_files).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    elif isinstance(folder_or_files, (str, Path)):
        files = [Path(folder_or_files)]
    else:
        files = [Path(p) for p in folder_or_files]
    numbered = [p for p in files if _NUMBER.search(p.stem)]
    if len(numbered) < 2:
        raise ProjectError("a PNG sequence needs at least two images with frame numbers in their names (walk_0001.png)")
    return sorted(numbered, key=lambda p: int(_NUMBER.search(p.stem).group(1)))


def png_sequence(folder_or_files: Path | Sequence[Path]) -> list[ImportedKey]:
    """Keys on the frames their file numbers give; an image equal to the one before is a hold."""
    files = sequence_files(folder_or_files)
    first_number = int(_NUMBER.search(files[0].stem).group(1))
    keys: list[ImportedKey] = []
    seen_frames: dict[int, str] = {}
    for path in files:
        frame = int(_NUMBER.search(path.stem).group(1)) - first_number
        if frame in seen_frames:
            raise ProjectError(f"{path.name} and {seen_frames[frame]} both claim frame {frame + first_number}")
        seen_frames[frame] = path.name
        image = read_image(path)
        if keys and keys[-1].image.shape == image.shape and np.array_equal(keys[-1].image, image):
            continue
        keys.append(ImportedKey(frame, image, path.name))
    check_same_size(keys)
    if len(keys) < 2:
        raise ProjectError("the sequence shows a single drawing: there is nothing to in-between")
    return keys


def psd_layers(path: Path, inbetweens: int = 7, exposure: int = 1) -> list[ImportedKey]:
    """One key per top-level layer or group, bottom layer first, each composited at canvas size."""
    from psd_tools import PSDImage  # only needed for this importer

    path = Path(path)
    try:
        check_declared_size(path, path.name)  # before psd-tools allocates anything at the canvas size
    except EngineError as exc:
        raise ProjectError(str(exc)) from None
    try:
        psd = PSDImage.open(path)
    except Exception as exc:
        raise ProjectError(f"{path.name} is not a PSD this app can read ({exc})") from None
    layers = list(psd)  # psd-tools lists top-level layers bottom first
    if len(layers) < 2:
        raise ProjectError(f"{path.name} has {len(layers)} layer(s): put one keyframe per layer (at least two)")
    width, height = psd.size
    if len(layers) * width * height > MAX_JOB_PIXELS:
        raise ProjectError(
            f"{path.name}: {len(layers)} layers of {width}x{height} are more than one project holds "
            f"({MAX_JOB_PIXELS} pixels in all); split the file or use fewer layers"
        )
    images = []
    for layer in layers:
        # Hidden frame layers are still frames (animators hide them to see others); inside a group,
        # hidden sub-layers stay hidden.
        image = layer.composite(
            viewport=psd.viewbox,
            force=True,
            layer_filter=lambda sub, frame_layer=layer: sub is frame_layer or sub.visible,
        )
        if image is None:
            image = Image.new("RGBA", psd.size, (0, 0, 0, 0))
        images.append((layer.name, np.asarray(image.convert("RGBA"))))
    own = [_OWN_LAYER.match(name.strip()) for name, _ in images]
    if all(own):  # our own export: keys and in-betweens by name, holds are timing only
        drawings = [(int(m.group(1)), m.group(2), name, im) for m, (name, im) in zip(own, images)
                    if not m.group(2).startswith("hold")]
        first = min(frame for frame, *_ in drawings)
        return [ImportedKey(frame - first, im, name, "key" if what == "key" else "inbetween")
                for frame, what, name, im in sorted(drawings, key=lambda d: d[0])]
    numbers = [_NUMBER.search(name) for name, _ in images]
    if all(numbers):
        values = [int(m.group(1)) for m in numbers]
        if all(a < b for a, b in zip(values, values[1:])):
            return [ImportedKey(v - values[0], im, name) for v, (name, im) in zip(values, images)]
    try:
        frames = key_frames_for_count(len(images), inbetweens, exposure)
    except PlanningError as exc:
        raise ProjectError(str(exc)) from None
    return [ImportedKey(f, im, name) for f, (name, im) in zip(frames, images)]


def project_from_keys(keys: Sequence[ImportedKey], name: str = "Untitled", fps: int = 12) -> Project:
    """A new project holding `keys` on the keys track."""
    if not keys:
        raise ProjectError("no keyframes to start a project from")
    check_same_size(keys)
    project = Project(name=name, fps=fps)
    for key in keys:
        drawing = Drawing(key.image)
        project.size = project.size or drawing.size
        if key.kind == "key":
            project.keys[key.frame] = KeyCell(drawing, "key", key.source)
    _place_inbetweens(project, [k for k in keys if k.kind == "inbetween"])
    return project


def _place_inbetweens(project: Project, drawings: Sequence[ImportedKey]) -> None:
    """Put re-imported in-betweens back between their keys, as accepted drawings, with the segment's
    timing set so they are its planned drawings (on ones/twos/threes when they are evenly spaced)."""
    for seg in project.segments():
        inside = sorted((d for d in drawings if seg.start < d.frame < seg.end), key=lambda d: d.frame)
        if not inside:
            continue
        frames = [d.frame for d in inside]
        steps = {b - a for a, b in zip([seg.start, *frames], [*frames, seg.end])}
        gap = seg.end - seg.start
        taus = tuple(round((f - seg.start) / gap, 6) for f in frames)
        timing = Timing(exposure=steps.pop()) if len(steps) == 1 else Timing(count=len(frames), spacing=taus)
        try:
            plan = plan_segment(seg.index, seg.start, seg.end, exposure=timing.exposure, spacing=timing.spacing,
                                count=timing.count)
        except PlanningError:
            plan = None
        planned = {ib.frame: ib.tau for ib in plan.inbetweens} if plan else {}
        if timing != project.timing:
            project.segment_timing[seg.start] = timing
        for d, tau in zip(inside, taus):
            cell = InbetweenCell(Drawing(d.image), planned.get(d.frame, tau), (seg.start, seg.end), "accepted",
                                 {"imported": d.source})
            project.inbetweens[d.frame] = cell


def detect_kind(paths: Sequence[Path]) -> str:
    """'psd', 'sequence' (numbered images or a folder) or 'keys' (loose keyframe images)."""
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].suffix.lower() == ".psd":
        return "psd"
    if len(paths) == 1 and paths[0].is_dir():
        return "sequence"
    return "keys"
