"""The most exposed forget examples of an attack as a row of image thumbnails, each with its pool
index, label and score: one inline SVG holding each stored image (8-bit, base64 in results.json)
as a PNG data URI, pixel for pixel, greyscale repeated into three channels."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from reports.plots import NotDrawable, drawn_or_noted
from reports.png import png_bytes

CELL, GAP, CAPTION = 44.0, 8.0, 26.0  # a thumbnail's side, the space between two, the text below each


def thumbnail_pixels(entry: Any) -> np.ndarray | None:
    """An entry's stored image as (H, W, 3) uint8, or None when it holds none or one that does not
    match its recorded shape."""
    image = entry.get("image") if isinstance(entry, dict) else None
    if not isinstance(image, dict) or image.get("dtype") != "uint8" or not isinstance(image.get("base64"), str):
        return None
    shape = image.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)
            and shape[0] in (1, 3)):
        return None
    try:
        data = base64.b64decode(image["base64"], validate=True)
    except ValueError:
        return None
    if len(data) != shape[0] * shape[1] * shape[2]:
        return None
    pixels = np.frombuffer(data, np.uint8).reshape(shape)
    return np.repeat(pixels, 3, axis=0).transpose(1, 2, 0) if shape[0] == 1 else pixels.transpose(1, 2, 0)


def thumbnail_uri(pixels: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels / 255.0)).decode()


def has_thumbnails(entries: Any) -> bool:
    return isinstance(entries, list) and any(thumbnail_pixels(e) is not None for e in entries)


@drawn_or_noted
def exposed_figure(entries: list[dict[str, Any]], title: str) -> Markup:
    """The entries with a stored image, left to right in the order given (highest score first)."""
    shown = [(entry, pixels) for entry in entries if (pixels := thumbnail_pixels(entry)) is not None]
    if not shown:
        raise NotDrawable("results.json holds no image of these examples")
    width = len(shown) * (CELL + GAP) - GAP + 8
    parts = []
    for k, (entry, pixels) in enumerate(shown):
        x = 4 + k * (CELL + GAP)
        middle = x + CELL / 2
        parts.append(f'<image x="{x:.2f}" y="20" width="{CELL:.2f}" height="{CELL:.2f}" preserveAspectRatio="none" '
                     f'style="image-rendering:pixelated" xlink:href="{thumbnail_uri(pixels)}"/>'
                     f'<text x="{middle:.2f}" y="{20 + CELL + 10:.2f}" text-anchor="middle">'
                     f'#{escape(entry.get("index"))} · {escape(entry.get("label"))}</text>'
                     f'<text x="{middle:.2f}" y="{20 + CELL + 20:.2f}" text-anchor="middle">'
                     f'{escape(_score(entry.get("score")))}</text>')
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
                  f'viewBox="0 0 {width:.2f} {20 + CELL + CAPTION:.2f}" role="img" aria-label="{escape(title)}" '
                  f'font-family="sans-serif" font-size="8.5" fill="#222"><text x="4" y="12" font-size="10">'
                  f'{escape(title)}</text>{"".join(parts)}</svg>')


def _score(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"
