"""The report's figures of membership inference: histograms clipped to their robust window, ROC
legends with each curve's AUC, the cross-method views, and the most exposed examples' images."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from png_pixels import png_pixels
from reports.across_methods import comparison_roc_figure, per_class_rows, tradeoff_figure, tradeoff_points
from reports.numbers import epsilon
from reports.plots import TAIL, histogram_clipping, histogram_figure, robust_window, roc_figure
from reports.svg import LEFT, Chart
from reports.thumbnails import exposed_figure, thumbnail_pixels


def _attack(auc, fpr=(0.0, 0.01, 0.1, 1.0), tpr=(0.0, 0.05, 0.3, 1.0), ci=None, per_class=None):
    return {"auc": {"value": auc, "ci95": ci}, "roc": {"log": {"fpr": list(fpr), "tpr": list(tpr)}},
            "per_class_auc": per_class or {}}


def _tick_values(svg: str) -> list[float]:
    """The x-axis tick labels of a linear chart, as numbers."""
    labels = re.findall(r'text-anchor="middle">([−\d.]+)</text>', svg)
    return [float(label.replace("−", "-")) for label in labels]


def test_an_outlier_does_not_squash_the_histogram_and_the_caption_counts_what_lies_beyond():
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(0, 1, 1000), rng.normal(1, 1, 1000)
    scores = np.concatenate([members, nonmembers, [-80.0]])  # one non-member far out
    edges = np.linspace(scores.min(), scores.max(), 31)
    histogram = {"edges": edges.tolist(), "members": np.histogram(members, edges)[0].tolist(),
                 "nonmembers": np.histogram(np.append(nonmembers, -80.0), edges)[0].tolist()}
    window = robust_window([histogram["members"], histogram["nonmembers"]])
    low, high = np.quantile(scores, [TAIL, 1 - TAIL])
    assert edges[window.first] <= low and edges[window.last + 1] >= high
    assert edges[window.first] > -10  # the outlier's bin is left out of the axis
    assert window.below == (0, 1)
    svg = str(histogram_figure(histogram, "h"))
    ticks = _tick_values(svg)
    assert ticks and min(ticks) >= edges[window.first] and max(ticks) <= edges[window.last + 1]
    assert "edge bins: at or beyond" in svg
    caption = histogram_clipping(histogram)
    assert "1% to 99% quantiles" in caption and "non-members: 1 below, 0 above" in caption


def test_a_histogram_without_outliers_is_drawn_whole_and_says_nothing():
    histogram = {"edges": [0.0, 1.0, 2.0, 3.0], "members": [5, 90, 5], "nonmembers": [40, 20, 40]}
    window = robust_window([histogram["members"], histogram["nonmembers"]])
    assert (window.first, window.last, window.clipped) == (0, 2, False)
    assert histogram_clipping(histogram) == "" and "at or beyond" not in str(histogram_figure(histogram, "h"))
    assert histogram_clipping({"edges": "garbled"}) == ""


def test_the_roc_legend_carries_each_drawn_curves_auc_and_no_other():
    attacks = {"lira_offline": _attack(0.61), "ulira": _attack(0.5, tpr=(0.0, 0.0, 0.0, 0.0)),
               "rmia_offline": _attack(0.55)}
    svg = str(roc_figure(attacks, "m"))
    assert "lira_offline (AUC 0.61)" in svg and "rmia_offline (AUC 0.55)" in svg
    assert "ulira" not in svg  # no point with both rates above zero: not drawn, not listed


def _results(methods):
    return {"mia": {"populations": {"original": {"lira_offline": _attack(0.7)},
                                    "reference_retrain": {"lira_offline": _attack(0.5)}},
                    "methods": methods}}


def test_the_cross_method_roc_has_one_curve_per_target_with_its_auc_in_a_legend_column():
    methods = {"finetune": {"lira_offline": _attack(0.58)}, "salun": {"lira_offline": _attack(0.52)},
               "bare": {"ulira": _attack(0.5)}}
    svg = str(comparison_roc_figure(_results(methods)["mia"], "lira_offline", "all"))
    labels = re.findall(r'dy="3.5">([^<]+)</text>', svg)
    assert labels == ["original (AUC 0.70)", "reference retrain (AUC 0.50)", "finetune (AUC 0.58)",
                      "salun (AUC 0.52)", "chance"]
    assert len(re.findall(r'<path d="[^"]*" fill="none"', svg)) == 5  # four curves and the diagonal
    legend_x = float(re.search(r'<rect x="([\d.]+)" y="[\d.]+" width="[\d.]+" height="\d+" fill="#fff"', svg)[1])
    frame_right = float(re.search(r'<rect x="54" y="26" width="([\d.]+)"', svg)[1]) + LEFT
    assert legend_x > frame_right  # the legend stands beside the axes, not on the curves


def _tradeoff_results():
    def ta(mean):
        return {"TA": {"mean": mean, "ci95": [mean - 0.01, mean + 0.01]}}

    mia = {name: {"ulira": {"auc": {"value": auc, "ci95": [auc - 0.05, auc + 0.05]}}}
           for name, auc in (("identity", 0.6), ("retrain", 0.5), ("salun", 0.52))}
    return {"mia": {"methods": mia}, "metrics": {"identity": ta(0.97), "retrain": ta(0.96), "salun": ta(0.9),
                                                 "no_mia": ta(0.8)},
            "populations": {"original": ta(0.97), "reference_retrain": ta(0.96)},
            "method_verdicts": {"identity": {"control": "identity"}, "retrain": {"control": "retrain"},
                                "salun": {"control": None}}}


def test_the_tradeoff_has_a_point_per_method_with_both_intervals_and_the_controls_marked():
    results = _tradeoff_results()
    points = tradeoff_points(results, "ulira")
    assert [p["label"] for p in points] == ["identity", "retrain", "salun"]  # no_mia has no U-LiRA
    assert points[2]["ta"] == 90.0 and points[2]["ta_ci"] == (89.0, 91.0) and points[2]["privacy_ci"] == pytest.approx((0.47, 0.57))
    svg = str(tradeoff_figure(results, "t"))
    # each marker twice, on the axes and in the legend: the retrain square (beside the frame and the
    # legend's box), the identity diamond, the salun circle
    assert svg.count("<rect") - 2 == 2 and svg.count("<polygon") == 2 and svg.count("<circle") == 2
    assert svg.count("<line") >= 3 * 6  # each point: two bars with two caps
    assert "retrain (control)" in svg and "original TA" in svg and "reference retrain TA" in svg


def test_without_ulira_the_tradeoff_shows_the_competition_epsilon_and_its_cap():
    results = _tradeoff_results()
    results["mia"] = {}
    results["equivalence"] = {"salun": {"neurips2023": {"eps_median": 50.0}}}
    svg = str(tradeoff_figure(results, "t"))
    assert "competition ε, median (cap 50)" in svg and svg.count("<circle") == 2  # salun, and its legend key
    assert epsilon(50.0) == "50.00 (the cap)" and epsilon(1.61) == "1.61" and epsilon(None) == "–"


def test_per_class_auc_rows_put_the_classes_in_numeric_order_with_their_intervals():
    with_intervals = {"10": {"value": 0.4, "ci95": [0.3, 0.5]}, "2": {"value": 0.6, "ci95": [0.5, 0.7]}}
    methods = {"salun": {"lira_offline": _attack(0.5, per_class=with_intervals)},
               "older": {"lira_offline": _attack(0.5, per_class={"2": 0.55})}}  # before the intervals
    table = per_class_rows(_results(methods), "lira_offline")
    assert table["classes"] == ["2", "10"]
    assert dict(table["rows"]) == {"salun": [with_intervals["2"], with_intervals["10"]],
                                   "older": [{"value": 0.55}, None]}


def _image(pixels: np.ndarray) -> dict:
    return {"shape": list(pixels.shape), "dtype": "uint8",
            "base64": base64.b64encode(pixels.astype(np.uint8).tobytes()).decode()}


def test_thumbnails_decode_to_the_stored_pixels():
    rng = np.random.default_rng(1)
    grey, colour = rng.integers(0, 256, (1, 8, 8)), rng.integers(0, 256, (3, 5, 4))
    entries = [{"index": 7, "label": 3, "score": 2.5, "image": _image(grey)},
               {"index": 9, "label": 1, "score": 1.0, "image": _image(colour)},
               {"index": 11, "label": 0, "score": 0.5}]
    svg = str(exposed_figure(entries, "exposed"))
    images = [base64.b64decode(uri) for uri in re.findall(r'data:image/png;base64,([A-Za-z0-9+/=]+)', svg)]
    assert len(images) == 2 and "#7 · 3" in svg and "#9 · 1" in svg and "#11" not in svg
    assert (png_pixels(images[0]) == np.repeat(grey, 3, axis=0).transpose(1, 2, 0)).all()
    assert (png_pixels(images[1]) == colour.transpose(1, 2, 0)).all()
    assert "not drawn (results.json holds no image" in str(exposed_figure(entries[2:], "exposed"))


def test_an_image_that_does_not_match_its_shape_is_left_out():
    grey = _image(np.zeros((1, 8, 8)))
    for broken in ({**grey, "shape": [1, 8, 7]}, {**grey, "shape": [2, 8, 4]}, {**grey, "dtype": "float32"},
                   {**grey, "base64": "not base64!"}, {**grey, "shape": "8x8"}, "an image"):
        assert thumbnail_pixels({"image": broken}) is None, broken
    assert thumbnail_pixels({"image": grey}).shape == (8, 8, 3)


def test_a_chart_with_a_legend_column_keeps_its_axes_clear_of_it():
    chart = Chart("t", "x", "y", 400, 200, ["a rather long legend label"])
    chart.axes([0, 1], [0, 1])
    chart.line([0, 1], [0, 1], "#000", "a rather long legend label")
    assert chart.right < 400 - 26 - 5.6 * len("a rather long legend label")


def test_thirteen_methods_each_have_their_own_look():
    methods = {f"m{k}": {"lira_offline": _attack(0.5)} for k in range(13)}
    svg = str(comparison_roc_figure(_results(methods)["mia"], "lira_offline", "all"))
    looks = re.findall(r'<path d="[^"]*" fill="none" stroke="([^"]+)" stroke-width="[\d.]+"((?: stroke-dasharray="[^"]+")?)/>', svg)
    assert len(looks) == 2 + 13 + 1 and len(set(looks[2:15])) == 13  # the references, the methods, chance
