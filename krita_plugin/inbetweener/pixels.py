"""Krita's layer pixels to PNG bytes, with the standard library only.

Krita hands out 8-bit RGBA layer pixels as BGRA bytes (straight alpha); the engine takes RGBA
PNGs. Only encoding is needed here: the engine's PNGs go back into Krita through
Document.importAnimation, which decodes them itself.
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bgra_to_rgba(bgra: bytes) -> bytes:
    """Swap blue and red of every pixel (Krita's BGRA order to the PNG's RGBA order)."""
    if len(bgra) % 4:
        raise ValueError(f"pixel data of {len(bgra)} bytes is not whole BGRA pixels")
    rgba = bytearray(bgra)
    rgba[0::4] = bgra[2::4]
    rgba[2::4] = bgra[0::4]
    return bytes(rgba)


def is_blank(bgra: bytes) -> bool:
    """True when every pixel is fully transparent (an empty keyframe that ends a drawing)."""
    alpha = bytes(bgra[3::4])
    return alpha.count(0) == len(alpha)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(rgba: bytes, width: int, height: int, level: int = 6) -> bytes:
    """An 8-bit RGBA PNG of `width` x `height` pixels (rows unfiltered, zlib-compressed)."""
    stride = width * 4
    if width < 1 or height < 1 or len(rgba) != stride * height:
        raise ValueError(f"{len(rgba)} bytes are not a {width}x{height} RGBA image")
    rows = b"".join(b"\x00" + rgba[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, level)) + _chunk(b"IEND", b"")


def bgra_png(bgra: bytes, width: int, height: int) -> bytes:
    """PNG bytes of a Krita layer's BGRA pixels."""
    return encode_png(bgra_to_rgba(bytes(bgra)), width, height)


def transparent_png(width: int, height: int) -> bytes:
    """A fully transparent frame: an empty keyframe on the result layer."""
    return encode_png(bytes(width * height * 4), width, height, level=9)
