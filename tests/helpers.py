"""Small drawings made on the fly for tests (no third-party artwork, no files in the repo)."""

from __future__ import annotations

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
