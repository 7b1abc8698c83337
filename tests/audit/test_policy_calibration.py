"""Calibration of the default policy: retrained populations compared with each other."""

import math

import numpy as np
import pytest

from attacks.mia.signals import logit_scaled_confidence
from audit.data import prepare_data
from audit.equivalence import method_equivalence
from audit.metrics import METRICS
from audit.observe import StoredObservations
from audit.pipeline import run_audit
from audit.plan import build_plan
from audit.policy import DEFAULT_RULES, FAIL, PASS, apply_policy
from audit.spec import default_spec, spec_from_dict
from audit.stats import summarize
from audit.store import Store
from audit.training import resolve_device

POOL, SIDE, DRAWS = 30, 10, 100  # retrained models per population, models per side, repeated draws


def retrained_models(tmp_path):
    """φ on the forget set and the metrics of 2 × POOL retrained models: the reference retrains
    and the retrain control's, with seeds independent of each other."""
    config = default_spec().to_dict()
    config["audit"].update(seeds=POOL, store=str(tmp_path / "store"))
    config["attacks"]["run"] = []
    config["unlearners"] = {"retrain": {}}
    spec = spec_from_dict(config, base_dir=tmp_path)
    results = run_audit(spec, tmp_path / "out", show_progress=False)
    data, device = prepare_data(spec), resolve_device("cpu")
    plan = build_plan(spec, data, device)
    observations = StoredObservations(Store(spec.audit.store), plan, data)
    keys = plan.retrains + plan.unlearned["retrain"]
    phi = observations.signal(keys, logit_scaled_confidence)[0][:, data.forget]
    metrics = {name: np.array(results["populations"]["reference_retrain"][name]["per_seed"]
                              + results["metrics"]["retrain"][name]["per_seed"]) for name in METRICS}
    return spec, phi, metrics


@pytest.mark.slow
def test_retrained_populations_pass_each_other_and_false_alarms_stay_near_alpha(tmp_path):
    spec, phi, metrics = retrained_models(tmp_path)
    rules = tuple(rule for rule in DEFAULT_RULES if not rule.startswith("mia."))  # MIA needs shadow models
    rng = np.random.default_rng(0)
    outcomes = []
    for draw in range(DRAWS):
        order = rng.permutation(len(phi))
        sides = order[:SIDE], order[SIDE:2 * SIDE]
        u, r = ({name: summarize(metrics[name][side]) for name in METRICS} for side in sides)
        equivalence = method_equivalence(phi[sides[0]], phi[sides[1]], u, r, spec, "calibration", draw)
        decided = apply_policy(rules, {"a": {"equivalence": equivalence, "metrics": u, "mia": None}}, {"a": "a"})
        outcomes.append([row["verdict"] for row in decided["verdicts"]])
    outcomes = np.array(outcomes)
    alpha = spec.equivalence.alpha
    allowed = alpha + 2 * math.sqrt(alpha * (1 - alpha) / DRAWS)
    false_alarms = (outcomes == FAIL).any(axis=1).mean()
    print(f"false-alarm rate {false_alarms:.3f} over {DRAWS} draws (allowed {allowed:.3f}); "
          f"per rule {dict(zip(rules, (outcomes == FAIL).mean(axis=0).round(3)))}; "
          f"PASS rate {(outcomes == PASS).all(axis=1).mean():.3f}")
    assert false_alarms <= allowed
    assert (outcomes[0] == PASS).all()  # two disjoint retrained populations pass
    assert (outcomes == PASS).all(axis=1).mean() >= 0.8
