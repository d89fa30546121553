"""Reading keyframes and sketches as RGBA uint8 arrays, with errors that name the file and the problem.

Decoding is bounded because the server decodes images uploaded by any local process and the
desktop app opens files from anywhere: the size an image declares in its header (PNG, PSD, or
whatever Pillow reads) is checked against the limit before a single pixel is decoded
(`check_declared_size`), and every decoder failure - a compressed text chunk that inflates past
Pillow's limit, a "decompression bomb", a truncated file - becomes an ImageInputError naming the
file, never a raw exception.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .api import EngineError

MAX_PIXELS = 4096 * 4096


class ImageInputError(EngineError):
    """A keyframe or sketch that cannot be used; the message names it."""


def _to_rgba(img: Image.Image, source: str) -> np.ndarray:
    """Any Pillow mode (palette, grey, 16-bit, CMYK) to straight-alpha RGBA uint8."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    if img.mode == "F":
        raise ImageInputError(f"{source}: floating-point images are not supported; save it as 8-bit PNG")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return np.ascontiguousarray(np.asarray(img.convert("RGBA"), dtype=np.uint8))


def declared_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) a PNG or PSD header declares (its first 26 bytes suffice); None for other formats."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24 and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head.startswith(b"8BPS") and len(head) >= 26:
        height, width = struct.unpack(">II", head[14:22])
        return width, height
    return None


def check_size(width: int, height: int, source: str, max_pixels: int = MAX_PIXELS) -> None:
    """The one size rule for every image the engine or the desktop app decodes."""
    if width < 1 or height < 1:
        raise ImageInputError(f"{source}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageInputError(f"{source}: {width}x{height} is larger than the limit of {max_pixels} pixels")


def check_declared_size(path: str | Path, source: str | None = None, max_pixels: int = MAX_PIXELS) -> tuple[int, int] | None:
    """Check the size a PNG or PSD file declares before anything decodes it; its (width, height)."""
    source = source or str(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
    except OSError as exc:
        raise ImageInputError(f"{source}: cannot read: {exc.strerror or exc}") from None
    size = declared_size(head)
    if size is not None:
        check_size(*size, source, max_pixels)
    return size


def _open_checked(fp, source: str, max_pixels: int) -> Image.Image:
    start = fp.tell()
    size = declared_size(fp.read(32))
    fp.seek(start)
    if size is not None:
        check_size(*size, source, max_pixels)
    try:
        img = Image.open(fp)
    except UnidentifiedImageError:
        raise ImageInputError(f"{source}: not an image (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as exc:
        raise ImageInputError(f"{source}: refused, the image is far larger than the limit ({exc})") from None
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        raise ImageInputError(f"{source}: damaged or unreadable image ({exc})") from None
    check_size(*img.size, source, max_pixels)
    return img


def read_image(path: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A keyframe or sketch file as RGBA uint8 (height, width, 4)."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise ImageInputError(f"{source}: file not found")
    if path.is_dir():
        raise ImageInputError(f"{source}: is a folder, not an image file")
    try:
        with open(path, "rb") as fh:
            img = _open_checked(fh, source, max_pixels)
            img.load()
            return _to_rgba(img, source)
    except PermissionError:
        raise ImageInputError(f"{source}: permission denied") from None
    except ImageInputError:
        raise
    except (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError) as exc:
        raise ImageInputError(f"{source}: damaged or truncated image ({exc})") from None


def decode_png_rgba(data: bytes, *, source: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """PNG bytes (e.g. an upload) to RGBA uint8; anything but a PNG is refused."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ImageInputError(f"{source}: not a PNG image")
    img = _open_checked(io.BytesIO(data), source, max_pixels)
    try:
        img.load()
    except (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError) as exc:
        raise ImageInputError(f"{source}: damaged or truncated PNG ({exc})") from None
    return _to_rgba(img, source)


def encode_png_rgba(image: np.ndarray, *, compress_level: int = 1) -> bytes:
    """RGBA uint8 array to PNG bytes (fast compression: frames are re-encoded often)."""
    check_rgba(image, "image")
    buf = io.BytesIO()
    Image.fromarray(image, "RGBA").save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def check_rgba(image: np.ndarray, source: str) -> None:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 4):
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", None)
        raise ImageInputError(f"{source}: expected an RGBA uint8 array (H, W, 4), got {dtype} {shape}")


def size_of(image: np.ndarray) -> tuple[int, int]:
    """(width, height), the order artists read sizes in."""
    return int(image.shape[1]), int(image.shape[0])


def fit_into(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to fit inside width × height keeping the aspect ratio, centred on transparent padding.

    Never crops the art: used by --fit to bring keyframes of different sizes to the first one's.
    """
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    premultiplied = image.astype(np.float32)
    premultiplied[..., :3] *= premultiplied[..., 3:4] / 255.0
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    channels = [
        np.asarray(Image.fromarray(premultiplied[..., c]).resize((new_w, new_h), resample))
        for c in range(4)
    ]
    scaled = np.stack(channels, axis=-1)
    alpha = np.clip(scaled[..., 3:4], 0.0, 255.0)
    colour = np.where(alpha > 0, scaled[..., :3] * 255.0 / np.maximum(alpha, 1e-6), 0.0)
    out = np.zeros((height, width, 4), np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w, :3] = np.clip(np.round(colour), 0, 255).astype(np.uint8)
    out[top : top + new_h, left : left + new_w, 3] = np.round(alpha[..., 0]).astype(np.uint8)
    return out


def is_blank(image: np.ndarray, *, threshold: int = 8) -> bool:
    """True when a sketch has nothing drawn on it: fully transparent, or one flat colour."""
    alpha = image[..., 3]
    if int(alpha.max()) <= threshold:
        return True
    visible = image[alpha > threshold][:, :3].astype(np.int16)
    return int((visible.max(axis=0) - visible.min(axis=0)).max()) <= threshold and bool((alpha > threshold).all())
