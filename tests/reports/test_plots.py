"""The sample grid: images laid out one row per class, in the data's pixel range."""

from __future__ import annotations

import numpy as np

from reports.plots import _mosaic, sample_grid_figure


def test_the_mosaic_places_each_image_in_its_cell_with_one_pixel_between():
    ink = np.ones((1, 2, 3))      # the top of the pixel range: dark on white
    paper = np.zeros((1, 2, 3))   # the bottom: white
    mosaic = _mosaic([[ink, paper], [paper]], 0.0, 1.0)
    assert mosaic.shape == (2 * 2 + 1, 2 * 3 + 1)
    assert (mosaic[0:2, 0:3] == 0).all() and (mosaic[0:2, 4:7] == 1).all()
    assert (mosaic[2, :] == 1).all() and (mosaic[:, 3] == 1).all()  # the gaps
    assert (mosaic[3:5, 4:7] == 1).all()  # a short row leaves its cells empty


def test_colour_images_keep_their_channels_and_are_clipped_to_the_range():
    image = np.stack([np.full((2, 2), v) for v in (-1.0, 0.5, 2.0)])
    mosaic = _mosaic([[image]], 0.0, 1.0)
    assert mosaic.shape == (2, 2, 3)
    assert np.allclose(mosaic[0, 0], [0.0, 0.5, 1.0])


def test_the_grid_is_one_inline_png_with_its_row_labels_as_text():
    rows = [[np.random.default_rng(k).random((1, 8, 8)) for _ in range(4)] for k in range(3)]
    svg = str(sample_grid_figure([[r.tolist() for r in row] for row in rows], [0.0, 1.0], ["0", "1", "2"], "grid"))
    assert svg.startswith("<svg") and svg.count("data:image/png;base64") == 1
    assert "<script" not in svg and all(f">{k}<" in svg for k in "012")
