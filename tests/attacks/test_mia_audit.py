"""Membership inference inside an audit, on the digits data."""

import json

import pytest
from helpers import small_spec

from audit.pipeline import run_audit

ATTACKS = ["threshold", "svc", "lira", "rmia", "ulira"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mia")
    spec = small_spec(
        folder,
        audit={"seeds": 3},
        model={"hidden": [128, 64]},
        train={"epochs": 30},
        attacks={"run": ATTACKS, "bootstrap": 200, "lira": {"shadows": 16}},
        unlearners={"identity": {}, "retrain": {}},
    )
    return run_audit(spec, folder / "out", show_progress=False)


def tpr_at(summary, fpr):
    return next(t["tpr"] for t in summary["tpr_at_fpr"] if t["fpr"] == fpr)


def test_every_attack_runs_on_every_target_and_says_what_it_rests_on(results):
    mia = results["mia"]
    assert set(mia["populations"]) == {"original", "reference_retrain"}
    assert set(mia["methods"]) == {"identity", "retrain"}
    targets = [("populations", t, a) for t, a in mia["populations"].items()]
    targets += [("methods", t, a) for t, a in mia["methods"].items()]
    for group, target, attacks in targets:
        expected = {"lira_offline", "lira_offline_two_sided", "rmia_offline"} | {f"threshold_{s}" for s in
                                                       ("loss", "confidence", "logit_scaled_confidence",
                                                        "entropy", "modified_entropy")}
        expected |= {f"svc_{f}" for f in ("confidence", "correctness", "entropy", "modified_entropy",
                                          "probabilities")}
        if group == "methods":
            expected.add("ulira")
        assert expected <= set(attacks), target
        for name, summary in attacks.items():
            assert summary["n_target_models"] == 3
            if name.startswith("svc"):
                assert summary["mia_efficacy"]["n"] == 3
                assert isinstance(summary["signal"]["separates"], bool) and summary["signal"]["why"]
                continue
            assert summary["n_members"] > 0 and summary["n_nonmembers"] > 0
            assert all(t["negatives"] == summary["n_nonmembers"] for t in summary["tpr_at_fpr"])
            if not name.startswith("threshold"):
                assert summary["n_shadow_models"] == 16
            # the independent units behind the interval and the bound
            examples = summary["units"]["examples"]
            assert summary["units"]["models"]["members"] == 3
            assert summary["epsilon_lower_bound"]["n_members"] < examples["members"] < summary["n_members"]
            assert "two-way" in summary["auc"]["bootstrap"]
            advantage, balanced = summary["advantage"], summary["balanced_accuracy"]
            assert advantage["ci95"][0] <= advantage["value"] <= advantage["ci95"][1] and advantage["resamples"] == 200
            assert balanced["value"] == pytest.approx((1 + advantage["value"]) / 2)
            assert balanced["ci95"] == pytest.approx([(1 + bound) / 2 for bound in advantage["ci95"]])
            for c, by_class in summary["per_class_auc"].items():  # each class with its interval and its units
                low, high = by_class["ci95"]
                assert low <= by_class["value"] <= high and by_class["resamples"] == 200, (target, name, c)
                assert by_class["units"]["models"]["members"] == 3
                assert 0 < by_class["units"]["examples"]["members"] < examples["members"]
            assert sum(e["units"]["examples"]["members"] for e in summary["per_class_auc"].values()) == \
                examples["members"]
    assert mia["recipe"]["n_shadow_models"] == 16
    # every scored point, member or not, is fitted on as many reference models
    assert mia["references_per_example"] == {"forget": 8, "test": 8}
    assert mia["methods"]["identity"]["ulira"]["references_per_example"] == {"unlearned": 8, "never_trained": 8}
    probes = [p for p in results["probes"] if p["id"].startswith("mia.")]
    assert {p["method"] for p in probes} == {"population:original", "population:reference_retrain", "identity", "retrain"}
    json.dumps(results, allow_nan=False)


def test_the_svc_attacks_confidence_view_is_the_metrics_mia_efficacy(results):
    for label, row in results["metrics"].items():
        assert results["mia"]["methods"][label]["svc_confidence"]["mia_efficacy"]["per_seed"] == row["MIA"]["per_seed"]
    for name, population in results["populations"].items():
        assert results["mia"]["populations"][name]["svc_confidence"]["mia_efficacy"]["per_seed"] == \
            population["MIA"]["per_seed"]


def test_lira_beats_the_loss_threshold_at_low_false_positive_rates_on_the_originals(results):
    original = results["mia"]["populations"]["original"]
    assert tpr_at(original["lira_offline"], 0.01) > tpr_at(original["threshold_loss"], 0.01)
    recipe = results["mia"]["recipe"]  # the shadow models' leave-one-out game over the whole pool
    assert recipe["lira_online"]["auc"]["value"] > recipe["threshold_loss"]["auc"]["value"]


def test_ulira_tells_identity_from_retraining_but_not_a_retrain(results):
    targets = results["mia"]["methods"]
    identity, retrain = targets["identity"]["ulira"]["auc"], targets["retrain"]["ulira"]["auc"]
    assert identity["ci95"][0] > retrain["ci95"][1]
    assert identity["ci95"][0] > 0.5 and retrain["ci95"][0] < 0.5 < retrain["ci95"][1]


def test_the_report_shows_every_attack_from_results_alone(results):
    from reports.html import render_html

    html = render_html(json.loads(json.dumps(results)))
    assert "Membership inference" in html
    for label, attacks in results["mia"]["methods"].items():
        block = html.split(f"<h3>{label}:", 1)[1].split("<h3>", 1)[0]  # the method's own findings
        for name, summary in attacks.items():
            if name.startswith("svc"):
                continue  # MIA-Efficacy per feature: in results.json, its confidence view in the metrics table
            assert f"<tr><td>{name}</td>\n<td>{summary['auc']['value']:.3f}" in block


def test_the_report_draws_each_targets_roc_and_histogram_as_inline_svg(results):
    from reports.html import render_html

    html = render_html(json.loads(json.dumps(results)))
    targets = len(results["mia"]["populations"]) + len(results["mia"]["methods"])
    assert html.count('<figure class="mia">') == 2 * targets
    # each target's ROC, histogram and most exposed digits; one ε histogram per method; privacy against
    # utility and one ROC per attack (ulira, lira_offline, rmia_offline, threshold_loss)
    assert html.count("<svg") == 3 * targets + len(results["equivalence"]) + 1 + 4
    for namespace in ("http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"):
        html = html.replace(namespace, "")
    assert "http://" not in html and "https://" not in html and "<script" not in html
    ulira = results["mia"]["methods"]["identity"]["ulira"]["roc"]["log"]
    assert len(ulira["fpr"]) > 10  # the curve drawn is the stored one, point by point


def test_ulira_interval_is_at_least_as_wide_as_resampling_examples_alone(results):
    for label in ("identity", "retrain"):
        entry = results["mia"]["methods"][label]["ulira"]["auc"]
        low, high = entry["ci95"]
        examples = entry["ci95_by_unit"]["examples"]["ci95"]
        assert high - low >= 0.95 * (examples[1] - examples[0])
        assert entry["se"] >= entry["ci95_by_unit"]["examples"]["se"] * 0.95
