"""Calibration and power of the default policy, measured as benchmarks/calibration.py does: every
probe and rule on disjoint retrained populations (nulls) and on methods of known leakage."""

import math

import numpy as np
import pytest

from audit.tasks.classification.calibration import NULL, calibration_spec, draw, method_fails, outcomes
from audit.data.datasets import prepare_data
from audit.engine.execute import execute
from audit.tasks.classification.plan import build_plan
from audit.config.policy import DEFAULT_RULES
from audit.engine.progress import Progress
from audit.core.seeds import numpy_generator
from audit.config.spec import default_spec
from audit.engine.store import Store
from audit.nn.training import resolve_device

POOL, SIDE, NULL_DRAWS, POWER_DRAWS = 16, 8, 40, 10


@pytest.mark.slow
def test_null_draws_rarely_fail_and_identity_is_caught(tmp_path):
    spec = calibration_spec(default_spec(), POOL, 100, DEFAULT_RULES, str(tmp_path / "store"))
    data, device = prepare_data(spec), resolve_device("cpu")
    plan = build_plan(spec, data, device)
    store = Store(spec.audit.store)
    execute(plan.jobs, spec, store, progress=Progress(len(plan.jobs), enabled=False))

    def run(kind, index):
        reference, unlearned = draw(kind, SIDE, numpy_generator("calibration test", kind, index), plan)
        assert not set(reference) & {key for keys in unlearned.values() for key in keys}
        return outcomes(spec, data, plan, store, device, reference, unlearned)

    nulls = [run("null", i) for i in range(NULL_DRAWS)]
    alpha = spec.equivalence.alpha
    allowed = alpha + 0.02 + 2 * math.sqrt(alpha * (1 - alpha) / NULL_DRAWS)
    for rule in DEFAULT_RULES:
        assert np.mean([d[NULL]["rules"][rule] == "FAIL" for d in nulls]) <= allowed, rule
    assert np.mean([method_fails(d[NULL]["rules"], DEFAULT_RULES) for d in nulls]) <= allowed
    for bound in nulls[0][NULL]["bounds"]:
        assert np.mean([d[NULL]["bounds"][bound] for d in nulls]) <= allowed, bound
    for bound in nulls[0]["reference_retrain"]["bounds"]:
        assert np.mean([d["reference_retrain"]["bounds"][bound] for d in nulls]) <= allowed, bound

    powers = [run("power", i) for i in range(POWER_DRAWS)]
    assert np.mean([method_fails(d["identity"]["rules"], DEFAULT_RULES) for d in powers]) >= 0.9
