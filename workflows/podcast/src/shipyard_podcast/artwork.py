"""The show's artwork: a generated cover when none is given, and the checks an image must pass
to be a podcast's artwork (Apple's rules: a square PNG or JPEG of 1400-3000 px in RGB), read
from its header."""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ARTWORK_MAX",
    "ARTWORK_MIN",
    "artwork_problems",
    "image_size",
    "make_cover",
]

ARTWORK_MIN, ARTWORK_MAX = 1400, 3000  # pixels, square
COVER_PIXELS = 1400


def make_cover(title: str, size: int = COVER_PIXELS) -> bytes:
    """A square PNG: a two-colour gradient drawn from the title's hash, with a row of bars."""
    import numpy as np  # only when a cover is drawn: the checks below are read at load

    seed = hashlib.sha256(title.encode()).digest()
    top, bottom = np.array(list(seed[0:3]), float), np.array(list(seed[3:6]), float) * 0.4
    ramp = np.linspace(0.0, 1.0, size)[:, None]
    rows = np.clip((top * 0.55 + 40) * (1 - ramp) + bottom * ramp, 0, 255).astype(np.uint8)
    image = np.repeat(rows[:, None, :], size, axis=1)  # bytes, not floats: 12 MB at 2000 px
    bars, width = 24, size // 40
    for i in range(bars):
        height = int(size * (0.08 + 0.3 * seed[(6 + i) % 32] / 255))
        x = size // 2 + (i - bars // 2) * width * 3 // 2
        image[size // 2 - height // 2 : size // 2 + height // 2, x : x + width] = 235
    return _png(image)


def _png(pixels: np.ndarray) -> bytes:
    import numpy as np

    height, width, _ = pixels.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, -1)], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a PNG or JPEG, read from its header; None otherwise."""
    header = _header(data)
    return header[:3] if header is not None else None


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_COLOUR = {0: "grayscale", 2: "rgb", 3: "rgb", 4: "grayscale", 6: "rgb"}  # IHDR colour type
_JPEG_COLOUR = {1: "grayscale", 3: "rgb", 4: "cmyk"}  # components in the frame header


def _header(data: bytes) -> tuple[str, int, int, str] | None:
    """(format, width, height, colour space) of a PNG or JPEG, from one read of its header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 25:
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height, _PNG_COLOUR.get(data[25], "")
    if data[:2] != b"\xff\xd8":
        return None
    at = 2  # the JPEG's markers, up to its frame header (SOFn: size and components)
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return "jpeg", width, height, _JPEG_COLOUR.get(data[at + 9], "")
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        at += 2 + length
    return None


def artwork_problems(data: bytes) -> list[str]:
    """Why an image cannot be the show's artwork under Apple's rules: a PNG or JPEG, square,
    1400-3000 px, in RGB."""
    header = _header(data)
    if header is None:
        return ["artwork is not a PNG or JPEG image"]
    _, width, height, colour = header
    problems = []
    if width != height:
        problems.append(f"artwork is {width}x{height} px, not square")
    if not ARTWORK_MIN <= width <= ARTWORK_MAX:
        problems.append(f"artwork is {width} px wide, outside {ARTWORK_MIN}-{ARTWORK_MAX} px")
    if colour != "rgb":
        problems.append(f"artwork is in {colour or 'an unknown colour space'}, not RGB")
    return problems
