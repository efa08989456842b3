"""Read a screenshot's pixels without an imaging library: PNG, 8-bit RGB(A), not interlaced.

Enough for Chromium's ``--screenshot`` output, so a test can check which colours
a page really shows (a badge's fill), not only what its HTML says.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type: RGB, RGBA


def rows(path: Path) -> tuple[int, int, list[bytes]]:
    """``(width, channels, rows)``: each row its raw bytes, filters undone."""
    data = path.read_bytes()
    if data[:8] != _SIGNATURE:
        raise ValueError(f"{path} is not a PNG")
    pos, compressed = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in _CHANNELS or interlace:
                raise ValueError(f"{path}: only 8-bit RGB/RGBA without interlace is read")
            channels = _CHANNELS[colour]
        elif kind == b"IDAT":
            compressed += body
        pos += 12 + length
    raw = zlib.decompress(compressed)
    stride = width * channels
    previous = bytearray(stride)
    out = []
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, previous, channels)
        out.append(bytes(line))
        previous = line
    return width, channels, out


def _unfilter(kind: int, line: bytearray, above: bytearray, bpp: int) -> None:
    for x in range(len(line)):
        left = line[x - bpp] if x >= bpp else 0
        up = above[x]
        corner = above[x - bpp] if x >= bpp else 0
        if kind == 1:
            line[x] = (line[x] + left) & 255
        elif kind == 2:
            line[x] = (line[x] + up) & 255
        elif kind == 3:
            line[x] = (line[x] + (left + up) // 2) & 255
        elif kind == 4:
            guess = left + up - corner
            near = min(
                (abs(guess - left), 0, left),
                (abs(guess - up), 1, up),
                (abs(guess - corner), 2, corner),
            )
            line[x] = (line[x] + near[2]) & 255


def count(path: Path, rgb: tuple[int, int, int], tolerance: int = 30) -> int:
    """How many pixels are within ``tolerance`` of ``rgb`` on every channel."""
    width, channels, lines = rows(path)
    total = 0
    for line in lines:
        for x in range(0, width * channels, channels):
            if all(abs(line[x + i] - rgb[i]) <= tolerance for i in range(3)):
                total += 1
    return total
