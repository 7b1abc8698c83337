"""Decode a PNG screenshot (8-bit RGB or RGBA, not interlaced) into its pixels, to check what
a browser or a PDF renderer actually drew."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def _unfilter(kind: int, line: np.ndarray, previous: np.ndarray, channels: int) -> np.ndarray:
    if kind == 0:
        return line
    if kind == 1:  # Sub: a running sum along the row, per channel
        return (np.cumsum(line.reshape(-1, channels).astype(np.int64), axis=0) & 255).astype(np.uint8).reshape(-1)
    if kind == 2:  # Up
        return ((line.astype(np.int32) + previous) & 255).astype(np.uint8)
    out, up = bytearray(line.tobytes()), previous.tobytes()
    for i in range(len(out)):  # Average and Paeth depend on the byte just decoded
        left = out[i - channels] if i >= channels else 0
        if kind == 3:
            out[i] = (out[i] + ((left + up[i]) >> 1)) & 255
            continue
        corner = up[i - channels] if i >= channels else 0
        guess = left + up[i] - corner
        pa, pb, pc = abs(guess - left), abs(guess - up[i]), abs(guess - corner)
        out[i] = (out[i] + (left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner)) & 255
    return np.frombuffer(bytes(out), np.uint8)


def png_pixels(data: bytes) -> np.ndarray:
    """(H, W, channels) uint8."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks, header = 8, [], None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8).reshape(height, 1 + width * channels)
    rows, previous = [], np.zeros(width * channels, np.uint8)
    for line in raw:
        previous = _unfilter(int(line[0]), line[1:], previous, channels)
        rows.append(previous)
    return np.stack(rows).reshape(height, width, channels)


def share_of_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 6) -> float:
    """The share of pixels within `tolerance` of `rgb` in every channel."""
    close = np.abs(pixels[..., :3].astype(np.int16) - np.array(rgb)).max(axis=-1) <= tolerance
    return float(close.mean())
