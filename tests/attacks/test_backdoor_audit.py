"""Backdoor verification inside an audit: the trigger reaches the originals only, and the
controls come out as they must."""

import pytest

from audit.data.datasets import prepare_data
from audit.core.errors import SalunInputError
from audit.pipeline import run_audit
from audit.engine.job import TRAIN
from audit.tasks.classification.plan import build_plan
from audit.data.poison import backdoor_positions, poisoned
from audit.config.policy import BACKDOOR_RULE
from audit.nn.training import resolve_device
from helpers import small_spec

BACKDOOR = {"fraction": 0.5, "target": 0, "queries": 200}


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backdoor")
    spec = small_spec(tmp, audit={"seeds": 3}, train={"epochs": 30}, backdoor=BACKDOOR,
                      unlearners={"identity": {}, "retrain": {}, "finetune": {}})
    return spec, run_audit(spec, tmp / "out", show_progress=False)


def test_the_trigger_is_planted_in_half_the_forget_set_and_only_the_originals_train_on_it(audited):
    spec, _ = audited
    data = prepare_data(spec)
    positions = backdoor_positions(data, 0.5, 0)
    candidates = (data.pool.y[data.forget] != 0).sum().item()
    assert len(positions) == round(0.5 * candidates) and set(positions) <= set(data.forget)
    dirty = poisoned(data, 0.5, 0, 2)
    assert (dirty.pool.y[positions] == 0).all() and (data.pool.y[positions] != 0).all()
    changed = (dirty.pool.x != data.pool.x).flatten(1).any(1).nonzero().flatten().tolist()
    assert changed == sorted(positions.tolist())  # nothing outside the chosen forget points
    plan = build_plan(spec, data, resolve_device("cpu"))
    trains = [job for job in plan.jobs if job.kind == TRAIN]
    assert all(("backdoor" in job.params) == (job.params["population"] == "original") for job in trains)


def test_identity_is_caught_with_high_power_and_a_retrain_is_not(audited):
    _, results = audited
    methods = results["backdoor"]["methods"]
    assert results["backdoor"]["backdoor_rate"]["estimate"] > 0.8
    assert methods["identity"]["verdict"] == "not deleted" and methods["identity"]["power"] > 0.99
    assert methods["retrain"]["verdict"] == "deleted" and not methods["retrain"]["rejected"]
    rows = {(row["method"], row["rule"]): row["verdict"] for row in results["verdicts"]}
    assert rows[("identity", BACKDOOR_RULE)] == "FAIL" and rows[("retrain", BACKDOOR_RULE)] == "PASS"


def test_a_target_outside_the_classes_is_refused_before_training(tmp_path):
    spec = small_spec(tmp_path, backdoor={**BACKDOOR, "target": 12})
    with pytest.raises(SalunInputError, match="backdoor.target: 12 is not a class of digits"):
        build_plan(spec, prepare_data(spec), resolve_device("cpu"))
