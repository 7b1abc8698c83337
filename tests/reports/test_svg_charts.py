"""The SVG charts: round ticks, decades on log axes, a legend that keeps off the data, PNGs
that decode to the pixels given, and the same bytes for the same data."""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np

from reports.plots import epsilon_figure, roc_figure
from reports.png import png_bytes
from reports.svg import HEIGHT, LEFT, RIGHT, TOP, WIDTH, Chart, Scale


def test_linear_ticks_are_round_numbers_inside_the_range():
    ticks = Scale(-0.03, 1.07, 0, 100).ticks()
    assert [label for _, label in ticks] == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert [label for _, label in Scale(-83.0, 21.0, 0, 100).ticks()] == ["−80", "−60", "−40", "−20", "0", "20"]


def test_log_ticks_are_the_decades_and_positions_are_logarithmic():
    scale = Scale(1e-3, 1.0, 0, 300, log=True)
    assert [label for _, label in scale.ticks()] == ["10⁻³", "10⁻²", "10⁻¹", "1"]
    assert scale(1e-2) == 100 and scale(1e-1) == 200


def _legend_box(svg: str) -> tuple[float, float]:
    x, y = re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="[\d.]+" height="\d+" fill="#fff"', svg).groups()
    return float(x), float(y)


def test_the_legend_goes_to_the_corner_the_data_leaves_free():
    tall_right = Chart("t", "x", "y")
    tall_right.axes([0, 10], [0, 1], xlimits=(0, 10), ylimits=(0, 1))
    tall_right.steps([0.1, 0.1, 0.1, 0.1, 1.0], [0, 2, 4, 6, 8, 10], "#000", "counts")
    x, y = _legend_box(str(tall_right.svg()))
    assert x < WIDTH / 2 and y < HEIGHT / 2  # not over the tallest bar, which fills the upper right

    rising = Chart("t", "x", "y")
    rising.axes([0, 1], [0, 1], xlimits=(0, 1), ylimits=(0, 1))
    rising.line([0, 1], [0, 1], "#000", "diagonal")
    x, y = _legend_box(str(rising.svg(("upper left", "lower right", "upper right", "lower left"))))
    assert (x, y) == (LEFT + 4, TOP + 4)  # the first preference the diagonal leaves free


def test_a_png_decodes_to_the_pixels_it_was_given():
    image = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])
    data = png_bytes(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (width, height, depth, colour) == (3, 2, 8, 0)
    length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT" and zlib.crc32(data[37:41 + length]) == struct.unpack(">I", data[41 + length:45 + length])[0]
    rows = np.frombuffer(zlib.decompress(data[41:41 + length]), np.uint8).reshape(2, 4)
    assert (rows[:, 0] == 0).all() and rows[:, 1:].tolist() == [[0, 255, 128], [255, 0, 64]]


def test_the_same_data_gives_the_same_bytes_and_only_drawn_curves_are_in_the_legend():
    attacks = {"lira_offline": {"roc": {"log": {"fpr": [0.0, 0.01, 0.1, 1.0], "tpr": [0.0, 0.05, 0.3, 1.0]}}},
               "ulira": {"roc": {"log": {"fpr": [0.0, 1.0], "tpr": [0.0, 0.0]}}}}
    first, second = str(roc_figure(attacks, "m")), str(roc_figure(attacks, "m"))
    assert first == second and "lira_offline" in first and "ulira" not in first
    assert " id=" not in first and "<script" not in first
    assert all(float(v) <= WIDTH - RIGHT + 0.02 * WIDTH for v in re.findall(r'[ML]([\d.]+) ', first))


def test_epsilon_at_the_cap_falls_in_the_last_bin():
    svg = str(epsilon_figure([0.5, 50.0, 50.0], 0.4, 2.2, "e"))
    assert "alike populations 0.40" in svg and "ln(N − 1) = 2.20" in svg
