"""The files users get: PNG sequences (with a timing sheet), contact sheets, GIF, MP4 and layered PSD.

The CLI and the desktop app both write through this module, so it imports numpy, Pillow, imageio and
psd-tools only (no torch, no Qt). Its input is the timeline: a list of frames, each with its
timeline frame number, an RGBA uint8 image, its kind ("key", "inbetween" or "hold") and the
timeline frame of the drawing it shows. `engine.api.FrameResult` has exactly these fields, so
`GenerationResult.frames` (or its `.values()`) can be passed as it is.

Every file is written under a temporary name in its destination folder and renamed into place; a
PNG sequence is written into a temporary folder beside its destination and moved in at the end.
A failure therefore never leaves a half-written export under the final names, and existing files
are only replaced when the caller asks for it (`overwrite=True`).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .api import EngineError
from .core import files

KINDS = ("key", "inbetween", "hold")
KIND_LABELS = {"key": "key", "inbetween": "in-between", "hold": "hold"}
FORMATS = ("png", "contact", "gif", "mp4", "psd")
DEFAULT_BACKGROUND = (255, 255, 255)
TRANSPARENT_INDEX = 255  # GIF palette entry kept for transparent pixels
_FORBIDDEN_NAME_CHARS = set('<>:"/\\|?*') | {chr(c) for c in range(32)}


class ExportError(EngineError):
    """An export that cannot be written as asked; the message names the file, frame or option."""


class ExportExistsError(ExportError, FileExistsError):
    """The export would replace an existing file and overwriting was not asked for."""

    def __init__(self, path: Path):
        self.path = Path(path)
        super().__init__(f"{self.path} already exists: choose another name or folder, or allow overwriting")


@dataclass(frozen=True)
class ExportFrame:
    """One timeline frame as the writers see it (the fields of engine.api.FrameResult)."""

    frame: int
    image: np.ndarray | None  # None when only the timing is planned (see timeline)
    kind: str
    drawing: int

    @property
    def label(self) -> str:
        """'f0012 key', 'f0013 in-between' or 'f0014 hold of f0013': how layers and cells are named."""
        if self.kind == "hold":
            return f"f{self.frame:04d} hold of f{self.drawing:04d}"
        return f"f{self.frame:04d} {KIND_LABELS[self.kind]}"


@dataclass(frozen=True)
class SequenceOptions:
    """How a PNG sequence is named and numbered: `<name>_<####>.png` from `start_number`.

    `duplicate_holds=False` writes each drawing once; the timing sheet then says which file each
    timeline frame shows (`timing_sheet=None` writes it exactly when holds are not duplicated).
    """

    name: str = "inbetween"
    padding: int = 4
    start_number: int = 1
    duplicate_holds: bool = True
    timing_sheet: bool | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        check_name(self.name)
        if not 1 <= self.padding <= 9:
            raise ExportError(f"padding must be 1 to 9 digits, got {self.padding}")
        if self.start_number < 0:
            raise ExportError(f"start number must not be negative, got {self.start_number}")

    @property
    def writes_timing_sheet(self) -> bool:
        return (not self.duplicate_holds) if self.timing_sheet is None else self.timing_sheet


@dataclass(frozen=True)
class SequenceFiles:
    """What write_png_sequence wrote: the frame files in timeline order, and the timing sheet if any."""

    frames: list[Path]
    timing_sheet: Path | None = None

    @property
    def paths(self) -> list[Path]:
        return self.frames + ([self.timing_sheet] if self.timing_sheet else [])

    def __len__(self) -> int:
        return len(self.paths)


# --- the timeline ----------------------------------------------------------------------------


def timeline(frames: Iterable[Any] | Mapping[int, Any], images: bool = True) -> list[ExportFrame]:
    """Check and order the frames to export; fill gaps in the timeline with holds.

    Accepts any objects with `frame`, `image`, `kind` and `drawing` attributes (FrameResult) or a
    mapping of them. A frame missing between two given ones shows the drawing before it, as on an
    exposure sheet, so passing only the drawings (GenerationResult.drawings()) still times right.
    With `images=False` only the timing is read (planning.FrameAssignment will do) and the
    frames' `image` is None.
    """
    if isinstance(frames, Mapping):
        frames = frames.values()
    given: dict[int, ExportFrame] = {}
    size: tuple[int, int] | None = None
    for item in frames:
        try:
            number, kind, drawing = item.frame, item.kind, item.drawing
            image = item.image if images else None
        except AttributeError as exc:
            raise ExportError(f"cannot export {item!r}: a frame needs frame, image, kind and drawing ({exc})") from None
        number, drawing = int(number), int(drawing)
        if kind not in KINDS:
            raise ExportError(f"frame {number}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
        if number in given:
            raise ExportError(f"frame {number} is given twice")
        if not images:
            given[number] = ExportFrame(number, None, kind, drawing if kind == "hold" else number)
            continue
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 4:
            raise ExportError(
                f"frame {number}: expected an RGBA uint8 image of shape (height, width, 4), "
                f"got {image.dtype} {tuple(image.shape)}"
            )
        if size is None:
            size = image.shape[:2]
        elif image.shape[:2] != size:
            raise ExportError(
                f"frame {number} is {image.shape[1]}x{image.shape[0]} but earlier frames are {size[1]}x{size[0]}: "
                "all frames of one export must have the same size"
            )
        given[number] = ExportFrame(number, image, kind, drawing if kind == "hold" else number)
    if not given:
        raise ExportError("nothing to export: no frames given")
    out: list[ExportFrame] = []
    for number in range(min(given), max(given) + 1):
        if number in given:
            out.append(given[number])
        else:
            shown = out[-1]
            out.append(ExportFrame(number, shown.image, "hold", shown.drawing))
    return out


def exposures(frames: Sequence[ExportFrame]) -> list[tuple[ExportFrame, int]]:
    """Each drawing with the number of timeline frames it stays on screen (its own plus its holds)."""
    out: list[tuple[ExportFrame, int]] = []
    for f in frames:
        if f.kind == "hold" and out and out[-1][0].drawing == f.drawing:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((f, 1))
    return out


# --- atomic writing --------------------------------------------------------------------------


def check_name(name: str) -> str:
    """A base name usable in every file system the front ends run on."""
    if not name or name.strip() != name or name.startswith(".") or set(name) & _FORBIDDEN_NAME_CHARS:
        raise ExportError(
            f"export name {name!r} is not usable as a file name: use letters, digits, '-' or '_', "
            "without path separators or a leading dot"
        )
    return name


def _refuse_existing(paths: Iterable[Path]) -> None:
    for path in paths:
        if os.path.lexists(path):
            raise ExportExistsError(path)


@contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """engine.core.files.atomic_path with export errors: a temporary path renamed onto `path` at the end."""
    with _as_export_errors():
        with files.atomic_path(path, overwrite) as tmp:
            yield tmp


@contextmanager
def _as_export_errors() -> Iterator[None]:
    """File-system failures as ExportError naming the file and the problem in words."""
    try:
        yield
    except ExportError:
        raise
    except files.DestinationExists as exc:
        raise ExportExistsError(exc.path) from None
    except files.UnsafeWriteError as exc:
        raise ExportError(str(exc)) from None
    except OSError as exc:
        raise ExportError(f"cannot write {files.describe_os_error(exc)}") from None


def check_writable(folder: str | os.PathLike) -> Path:
    """Refuse, before any frame is drawn, an output folder that cannot be written (a file in the
    way, a read-only disk, no permission)."""
    with _as_export_errors():
        return files.check_writable_folder(folder)


def _save_png(image: np.ndarray, path: Path) -> None:
    """RGBA 8-bit PNG (the one place frames are encoded, so tests can make it fail)."""
    Image.fromarray(image, "RGBA").save(path, format="PNG")


# --- PNG sequence and timing sheet -----------------------------------------------------------


def sequence_file_name(name: str, number: int, padding: int = 4) -> str:
    """`<name>_<number>.png` with `padding` digits, e.g. walk_0012.png."""
    return f"{name}_{number:0{padding}d}.png"


def timing_sheet_name(name: str) -> str:
    return f"{name}_timing.csv"


@dataclass(frozen=True)
class _SequencePlan:
    to_write: list[tuple[ExportFrame, str]]  # frames that get a file, and its name
    file_of: dict[int, str]  # timeline frame -> the file it shows
    sheet: str | None  # timing sheet file name

    @property
    def names(self) -> list[str]:
        return [n for _, n in self.to_write] + ([self.sheet] if self.sheet else [])


def _plan_sequence(frames: Sequence[ExportFrame], options: SequenceOptions) -> _SequencePlan:
    first = frames[0].frame
    last_number = options.start_number + frames[-1].frame - first
    if len(str(last_number)) > options.padding:
        raise ExportError(
            f"frames numbered {options.start_number} to {last_number} need {len(str(last_number))} digits "
            f"but padding is {options.padding}"
        )
    file_of: dict[int, str] = {}
    to_write: list[tuple[ExportFrame, str]] = []
    for f in frames:
        if not options.duplicate_holds and f.kind == "hold" and f.drawing in file_of:
            file_of[f.frame] = file_of[f.drawing]
            continue
        file_of[f.frame] = sequence_file_name(options.name, options.start_number + f.frame - first, options.padding)
        to_write.append((f, file_of[f.frame]))
    return _SequencePlan(to_write, file_of, timing_sheet_name(options.name) if options.writes_timing_sheet else None)


def check_sequence_target(
    folder: str | os.PathLike, frames: Iterable[Any] | Mapping[int, Any], options: SequenceOptions
) -> list[Path]:
    """The files a sequence of these frames would write; raises ExportExistsError on the first that
    exists (unless overwriting). Needs only the timing, so it runs before any frame is generated."""
    plan = _plan_sequence(timeline(frames, images=False), options)
    paths = [Path(folder) / n for n in plan.names]
    check_writable(folder)
    with _as_export_errors():
        files.recover_interrupted(folder)
        files.check_destinations(folder, plan.names, options.overwrite)
    return paths


def write_png_sequence(
    frames: Iterable[Any] | Mapping[int, Any],
    folder: str | os.PathLike,
    options: SequenceOptions | None = None,
) -> SequenceFiles:
    """Write `<name>_<####>.png`, one RGBA 8-bit file per timeline frame, numbered from the start number.

    File numbers follow the timeline (the first frame gets the start number). Without duplicated
    holds, held frames get no file of their own, the numbering keeps its gaps, and the timing sheet
    `<name>_timing.csv` (columns frame, file, kind, drawing) says which file each timeline frame shows.
    """
    options = options or SequenceOptions()
    frames = timeline(frames)
    plan = _plan_sequence(frames, options)
    folder = Path(folder)
    with _as_export_errors(), files.publish(folder, plan.names, options.overwrite) as staging:
        for f, file_name in plan.to_write:
            _save_png(f.image, staging / file_name)
        if plan.sheet:
            with open(staging / plan.sheet, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["frame", "file", "kind", "drawing"])
                for f in frames:
                    writer.writerow([f.frame, plan.file_of[f.frame], f.kind, f.drawing])
    return SequenceFiles([folder / n for _, n in plan.to_write], folder / plan.sheet if plan.sheet else None)


def read_timing_sheet(path: str | os.PathLike) -> list[dict]:
    """Rows of a timing sheet as dicts with int frame/drawing, str file/kind."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [
            {"frame": int(r["frame"]), "file": r["file"], "kind": r["kind"], "drawing": int(r["drawing"])}
            for r in csv.DictReader(fh)
        ]


# --- compositing helpers ---------------------------------------------------------------------


def _colour(value: Sequence[int], what: str) -> tuple[int, int, int]:
    rgb = tuple(int(c) for c in value)
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ExportError(f"{what} must be three values 0-255 (red, green, blue), got {tuple(value)!r}")
    return rgb  # type: ignore[return-value]


def over(image: np.ndarray, backdrop: np.ndarray | Sequence[int]) -> np.ndarray:
    """Straight-alpha RGBA composited over an opaque backdrop (a colour or an RGB image): RGB uint8."""
    alpha = image[..., 3:4].astype(np.float32) / 255.0
    base = np.broadcast_to(np.asarray(backdrop, dtype=np.float32), image.shape[:2] + (3,))
    out = image[..., :3].astype(np.float32) * alpha + base * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def checkerboard(height: int, width: int, square: int = 8,
                 light: Sequence[int] = (236, 236, 236), dark: Sequence[int] = (200, 200, 200)) -> np.ndarray:
    """The usual grey checks that show where a picture is transparent."""
    ys, xs = np.mgrid[0:height, 0:width]
    odd = ((ys // square + xs // square) % 2).astype(bool)
    return np.where(odd[..., None], np.asarray(dark, np.uint8), np.asarray(light, np.uint8))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType: fixed bitmap font
        return ImageFont.load_default()


# --- contact sheet ---------------------------------------------------------------------------

_KIND_TAG_COLOURS = {"key": (200, 58, 64), "inbetween": (52, 104, 196), "hold": (128, 128, 128)}


def write_contact_sheet(
    frames: Iterable[Any] | Mapping[int, Any],
    path: str | os.PathLike,
    *,
    columns: int | None = None,
    thumb_width: int = 256,
    include_holds: bool = False,
    background: Sequence[int] = (250, 250, 248),
    overwrite: bool = False,
) -> Path:
    """A PNG grid of the frames, each labelled with its frame number and kind.

    Transparent frames are shown on a checkerboard. Without `include_holds` each drawing gets one
    cell and a drawing held longer than one frame says so (e.g. 'f0012 in-between x2').
    """
    frames = timeline(frames)
    background = _colour(background, "contact sheet background")
    if include_holds:
        cells = [(f, f.label) for f in frames]
    else:
        cells = [(f, f.label + (f" x{n}" if n > 1 else "")) for f, n in exposures(frames)]
    if columns is None:
        columns = min(len(cells), 6)
    if columns < 1:
        raise ExportError(f"a contact sheet needs at least one column, got {columns}")
    if thumb_width < 16:
        raise ExportError(f"thumbnail width must be at least 16 pixels, got {thumb_width}")
    height, width = frames[0].image.shape[:2]
    scale = min(1.0, thumb_width / width)
    tw, th = max(1, round(width * scale)), max(1, round(height * scale))
    font = _font(13)
    pad, label_h = 10, 22
    cell_w = max(tw, 14 + max(math.ceil(font.getlength(text)) for _, text in cells))  # labels never overlap
    rows = math.ceil(len(cells) / columns)
    sheet = Image.new("RGB", (pad + columns * (cell_w + pad), pad + rows * (th + label_h + pad)), background)
    draw = ImageDraw.Draw(sheet)
    board = checkerboard(height, width, square=max(4, round(8 / scale)))
    for i, (f, text) in enumerate(cells):
        x = pad + (i % columns) * (cell_w + pad)
        y = pad + (i // columns) * (th + label_h + pad)
        backdrop = board if (f.image[..., 3] < 255).any() else background
        thumb = Image.fromarray(over(f.image, backdrop), "RGB")
        if (tw, th) != (width, height):
            thumb = thumb.resize((tw, th), Image.Resampling.LANCZOS)
        sheet.paste(thumb, (x, y))
        draw.rectangle((x - 1, y - 1, x + tw, y + th), outline=(180, 180, 180))
        draw.rectangle((x, y + th + 5, x + 9, y + th + 14), fill=_KIND_TAG_COLOURS[f.kind])
        draw.text((x + 14, y + th + 3), text, fill=(30, 30, 30), font=font)
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        sheet.save(tmp, format="PNG")
    return path


# --- GIF -------------------------------------------------------------------------------------


def _durations_ms(exposed: Sequence[int], fps: float) -> list[int]:
    """Per-drawing durations in GIF centisecond steps whose running total tracks the exact timing."""
    out, elapsed, shown = [], 0, 0
    for n in exposed:
        elapsed += n
        end = round(elapsed * 100 / fps) * 10
        out.append(end - shown)
        shown = end
    return out


def _check_fps(fps: float, limit: float, what: str) -> float:
    fps = float(fps)
    if not 0 < fps <= limit:
        raise ExportError(f"{what} frame rate must be above 0 and at most {limit:g} fps, got {fps:g}")
    return fps


def _shared_palette(pixels: Sequence[np.ndarray], colours: int, budget: int = 1 << 21) -> Image.Image:
    """One palette for all frames, from a regular sample of all their pixels.

    Entries past `colours` repeat the first colour, so a frame quantized with it never lands on
    an index the caller keeps for something else (the transparent index).
    """
    flat = np.concatenate([p.reshape(-1, 3) for p in pixels] + [np.zeros((0, 3), np.uint8)])
    if len(flat) == 0:
        flat = np.zeros((1, 3), np.uint8)
    flat = flat[:: max(1, len(flat) // budget)]
    found = Image.fromarray(np.ascontiguousarray(flat[:, None, :]), "RGB").quantize(
        colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    entries = found.getpalette()[: 3 * colours]
    entries += entries[:3] * (256 - len(entries) // 3)
    palette = Image.new("P", (1, 1))
    palette.putpalette(entries)
    return palette


def write_gif(
    frames: Iterable[Any] | Mapping[int, Any],
    path: str | os.PathLike,
    *,
    fps: float = 24.0,
    loop: int = 0,
    background: Sequence[int] | None = DEFAULT_BACKGROUND,
    overwrite: bool = False,
) -> Path:
    """Animated GIF at `fps` timeline frames per second; `loop=0` repeats forever.

    Holds become longer frame durations, not repeated frames. Frames are composited over the
    `background` colour; with `background=None` transparency is kept as GIF transparency, which
    is on/off per pixel (alpha below 128 becomes transparent). One palette serves all frames so
    flat colours do not flicker, and there is no dithering, which would speckle the fills.
    """
    frames = timeline(frames)
    fps = _check_fps(fps, 50.0, "GIF")  # players slow down frames shorter than 20 ms
    if loop < 0:
        raise ExportError(f"loop must be 0 (forever) or a number of repeats, got {loop}")
    exposed = exposures(frames)
    if background is not None:
        rgbs = [over(f.image, _colour(background, "GIF background")) for f, _ in exposed]
        transparent = [None] * len(rgbs)
    else:
        rgbs = [f.image[..., :3] for f, _ in exposed]
        transparent = [f.image[..., 3] < 128 for f, _ in exposed]
    palette = _shared_palette([rgb if t is None else rgb[~t] for rgb, t in zip(rgbs, transparent)],
                              colours=256 if background is not None else TRANSPARENT_INDEX)
    pictures: list[Image.Image] = []
    for rgb, t in zip(rgbs, transparent):
        picture = Image.fromarray(rgb, "RGB").quantize(palette=palette, dither=Image.Dither.NONE)
        if t is not None:
            indices = np.asarray(picture).copy()
            indices[indices == TRANSPARENT_INDEX] = 0  # the same colour as entry 0 (see _shared_palette)
            indices[t] = TRANSPARENT_INDEX
            picture = Image.fromarray(indices, "P")
            entries = palette.getpalette()
            if t.all() and pictures:
                # Pillow writes a later frame that matches the cleared canvas index for index as a
                # second file header, which ends the GIF early; a different (invisible) colour for
                # the transparent entry makes it compare by colour and write the empty frame.
                entries[-3:] = [255 - c for c in entries[-3:]]
            picture.putpalette(entries)
        pictures.append(picture)
    options: dict[str, Any] = {
        "save_all": True,
        "append_images": pictures[1:],
        "duration": _durations_ms([n for _, n in exposed], fps),
        "loop": loop,
        "optimize": False,
        "disposal": 2,
    }
    if background is None:
        options["transparency"] = TRANSPARENT_INDEX
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        pictures[0].save(tmp, format="GIF", **options)
    return path


def write_animated_png(
    frames: Iterable[Any] | Mapping[int, Any],
    path: str | os.PathLike,
    *,
    fps: float = 24.0,
    loop: int = 0,
    overwrite: bool = False,
) -> Path:
    """Animated PNG (APNG) with full 8-bit alpha, for art on transparency that GIF's on/off
    transparency would fringe. Holds become longer frame durations; browsers and most editors play it."""
    frames = timeline(frames)
    fps = _check_fps(fps, 100.0, "APNG")
    if loop < 0:
        raise ExportError(f"loop must be 0 (forever) or a number of repeats, got {loop}")
    exposed = exposures(frames)
    pictures = [Image.fromarray(np.ascontiguousarray(f.image), "RGBA") for f, _ in exposed]
    durations = [1000.0 * n / fps for _, n in exposed]
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        pictures[0].save(tmp, format="PNG", save_all=True, append_images=pictures[1:], duration=durations,
                         loop=loop, disposal=1, blend=0, default_image=False)
    return path


# --- MP4 -------------------------------------------------------------------------------------


def write_mp4(
    frames: Iterable[Any] | Mapping[int, Any],
    path: str | os.PathLike,
    *,
    fps: float = 24.0,
    background: Sequence[int] = DEFAULT_BACKGROUND,
    crf: int = 18,
    overwrite: bool = False,
) -> Path:
    """H.264 MP4 (yuv420p, plays everywhere) with every timeline frame, holds repeated.

    Video has no alpha, so frames are composited over `background`. H.264 in 4:2:0 needs even
    dimensions: an odd width or height gets one extra row/column of background (padding, never
    cropping the drawing). `crf` is x264's constant quality (0 lossless .. 51 worst; 18 looks clean).
    """
    import imageio.v2 as imageio

    frames = timeline(frames)
    fps = _check_fps(fps, 240.0, "MP4")
    if not 0 <= crf <= 51:
        raise ExportError(f"crf must be 0 to 51, got {crf}")
    colour = _colour(background, "MP4 background")
    height, width = frames[0].image.shape[:2]
    even_h, even_w = height + height % 2, width + width % 2
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        writer = imageio.get_writer(
            tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
            macro_block_size=1, quality=None, ffmpeg_log_level="error",
            output_params=["-crf", str(crf), "-movflags", "+faststart"],
        )
        try:
            canvas = np.empty((even_h, even_w, 3), np.uint8)
            canvas[:] = colour
            for f in frames:
                canvas[:height, :width] = over(f.image, colour)
                writer.append_data(canvas)
        finally:
            writer.close()
    return path


# --- layered PSD -----------------------------------------------------------------------------


def write_psd(
    frames: Iterable[Any] | Mapping[int, Any],
    path: str | os.PathLike,
    *,
    include_holds: bool = False,
    overwrite: bool = False,
    only_first_visible: bool = False,
) -> Path:
    """Layered RGBA PSD: one layer per drawing, the bottom layer is the first frame.

    Layer names carry the timeline frame and the kind ('f0000 key', 'f0004 in-between'); with
    `include_holds` held frames get layers too ('f0005 hold of f0004'). `only_first_visible`
    hides every layer but the first frame's, so the file opens showing one drawing (frames as layers).
    """
    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer
    from psd_tools.constants import Compression

    frames = timeline(frames)
    layers = frames if include_holds else [f for f, _ in exposures(frames)]
    height, width = frames[0].image.shape[:2]
    psd = PSDImage.new("RGBA", (width, height), color=(0, 0, 0, 0), compression=Compression.RLE)
    for index, f in enumerate(layers):  # appended bottom to top
        layer = PixelLayer.frompil(Image.fromarray(f.image, "RGBA"), psd, f.label)
        if only_first_visible and index:
            layer.visible = False
    path = Path(path)
    with atomic_path(path, overwrite) as tmp:
        psd.save(tmp)
    return path


# --- everything at once ----------------------------------------------------------------------


def export_targets(folder: str | os.PathLike, name: str, formats: Iterable[str]) -> dict[str, Path]:
    """Where export_all writes each format: the sequence into `folder`, the others beside it as
    `<name>_contact.png`, `<name>.gif`, `<name>.mp4` and `<name>.psd`."""
    check_name(name)
    folder = Path(folder)
    names = {"png": None, "contact": f"{name}_contact.png", "gif": f"{name}.gif", "mp4": f"{name}.mp4",
             "psd": f"{name}.psd"}
    targets: dict[str, Path] = {}
    for fmt in formats:
        if fmt not in names:
            raise ExportError(f"unknown export format {fmt!r}: choose from {', '.join(FORMATS)}")
        targets[fmt] = folder if names[fmt] is None else folder / names[fmt]
    return targets


def export_all(
    frames: Iterable[Any] | Mapping[int, Any],
    folder: str | os.PathLike,
    name: str = "inbetween",
    formats: Iterable[str] = ("png",),
    *,
    fps: float = 24.0,
    padding: int = 4,
    start: int = 1,
    duplicate_holds: bool = True,
    background: Sequence[int] = DEFAULT_BACKGROUND,
    overwrite: bool = False,
) -> dict[str, Path | SequenceFiles]:
    """Write several formats with the project's file names (see export_targets) into one folder.

    When overwriting is not allowed, every destination is checked before anything is written, so
    a name clash never leaves some formats written and others not.
    """
    frames = timeline(frames)
    targets = export_targets(folder, name, formats)
    sequence = SequenceOptions(name, padding, start, duplicate_holds, overwrite=overwrite)
    check_writable(folder)
    if not overwrite:
        paths = [target for fmt, target in targets.items() if fmt != "png"]
        if "png" in targets:
            paths += check_sequence_target(targets["png"], frames, sequence)
        _refuse_existing(paths)
    out: dict[str, Path | SequenceFiles] = {}
    for fmt, target in targets.items():
        if fmt == "png":
            out[fmt] = write_png_sequence(frames, target, sequence)
        elif fmt == "contact":
            out[fmt] = write_contact_sheet(frames, target, overwrite=overwrite)
        elif fmt == "gif":
            out[fmt] = write_gif(frames, target, fps=fps, background=background, overwrite=overwrite)
        elif fmt == "mp4":
            out[fmt] = write_mp4(frames, target, fps=fps, background=background, overwrite=overwrite)
        else:
            out[fmt] = write_psd(frames, target, overwrite=overwrite)
    return out
