"""Small drawings made on the fly for tests (no third-party artwork, no files in the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def disc_keyframe(cx: float, cy: float, *, width: int = 96, height: int = 64, radius: float = 10,
                  fill=(230, 80, 60), transparent: bool = False) -> np.ndarray:
    """A cel-style disc (flat fill, dark outline) drawn at 4x and downsampled for anti-aliasing."""
    s = 4
    bg = (0, 0, 0, 0) if transparent else (245, 240, 225, 255)
    img = Image.new("RGBA", (width * s, height * s), bg)
    d = ImageDraw.Draw(img)
    box = [(cx - radius) * s, (cy - radius) * s, (cx + radius) * s, (cy + radius) * s]
    d.ellipse(box, fill=(*fill, 255), outline=(30, 25, 35, 255), width=2 * s)
    return np.asarray(img.resize((width, height), Image.Resampling.BOX), dtype=np.uint8).copy()


def save_png(path, image: np.ndarray) -> str:
    Image.fromarray(image, "RGBA").save(path)
    return str(path)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes of PNG whose header declares width x height (a decompression bomb's shape)."""
    import struct

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IEND", b"")


def png_with_text_bomb() -> bytes:
    """A valid 4x4 PNG carrying a compressed text chunk that inflates past Pillow's limit."""
    import struct
    import zlib

    from PIL import PngImagePlugin

    header = struct.pack(">IIBBBBB", 4, 4, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * 16 for _ in range(4)))
    text = b"note\x00\x00" + zlib.compress(b" " * (PngImagePlugin.MAX_TEXT_CHUNK + 1024), 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"zTXt", text)
            + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b""))


def psd_claiming(path, width: int, height: int) -> str:
    """A small two-layer PSD whose header then claims width x height (the layers stay small)."""
    import struct

    from psd_tools import PSDImage
    from psd_tools.api.layers import PixelLayer

    psd = PSDImage.new("RGBA", (8, 8), color=(0, 0, 0, 0))
    for name in ("f0000 key", "f0008 key"):
        PixelLayer.frompil(Image.new("RGBA", (8, 8), (200, 30, 30, 255)), psd, name)
    psd.save(path)
    data = bytearray(open(path, "rb").read())
    data[14:22] = struct.pack(">II", height, width)
    open(path, "wb").write(bytes(data))
    return str(path)


def cel_scene(t: float, *, width: int = 512, height: int = 320, transparent: bool = False,
              new_disc: bool = False) -> np.ndarray:
    """A cel-style shot at time t in [0, 1]: a ground line, an outlined figure that travels right and
    turns, a box that slides left; `new_disc` adds a yellow disc that neither key has. Flat colours,
    anti-aliased dark lines of about width/400 px."""
    import cv2

    line = (30, 25, 35)
    lw = max(2, width // 400)
    rgb = np.zeros((height, width, 3), np.uint8)
    alpha = np.zeros((height, width), np.uint8)
    if not transparent:
        rgb[:] = (235, 228, 210)
        rgb[int(height * 0.7):] = (120, 170, 110)
        cv2.line(rgb, (0, int(height * 0.7)), (width, int(height * 0.7)), line, lw, cv2.LINE_AA)
    layers = [(rgb, None), (alpha, 255)]
    cx, cy = int(width * (0.3 + 0.3 * t)), int(height * (0.45 - 0.05 * np.sin(np.pi * t)))
    r = int(height * 0.18)
    bx, by = width * (0.8 - 0.25 * t), height * 0.55
    box = (np.array([[-100, -80], [100, -90], [110, 90], [-90, 80]]) * width / 1920 + [bx, by]).astype(np.int32)
    for image, ink in layers:
        def c(colour, _ink=ink):
            return _ink if _ink is not None else colour
        cv2.ellipse(image, (cx, cy), (r, int(r * 1.2)), 30 * t, 0, 360, c((230, 80, 60)), -1, cv2.LINE_AA)
        cv2.ellipse(image, (cx + r // 4, cy + r // 4), (r // 2, r // 2), 0, 0, 360, c((180, 55, 45)), -1, cv2.LINE_AA)
        cv2.ellipse(image, (cx, cy), (r, int(r * 1.2)), 30 * t, 0, 360, c(line), lw, cv2.LINE_AA)
        cv2.circle(image, (cx - r // 3, cy - r // 3), r // 6, c((250, 250, 250)), -1, cv2.LINE_AA)
        cv2.circle(image, (cx - r // 3, cy - r // 3), r // 6, c(line), lw, cv2.LINE_AA)
        cv2.fillPoly(image, [box], c((80, 120, 200)), cv2.LINE_AA)
        cv2.polylines(image, [box], True, c(line), lw, cv2.LINE_AA)
        if new_disc:
            centre, radius = (int(width * 0.15), int(height * 0.2)), int(height * 0.06)
            cv2.circle(image, centre, radius, c((250, 210, 60)), -1, cv2.LINE_AA)
            cv2.circle(image, centre, radius, c(line), lw, cv2.LINE_AA)
    if not transparent:
        alpha[:] = 255
    return np.dstack([rgb, alpha])


def make_training_clips(folder: Path, *, clips: int, frames: int, seed: int) -> Path:
    """A small synthetic cartoon clip set (tools/make_synthetic_clips.py) at the tiny model's size."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_synthetic_clips", Path(__file__).resolve().parents[1] / "tools" / "make_synthetic_clips.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_clips(folder, clips=clips, frames=frames, width=128, height=64, seed=seed)
    return folder
