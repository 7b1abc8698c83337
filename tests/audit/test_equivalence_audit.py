"""The retrain-equivalence tests inside an audit: every method gets them, from its own numbers."""

import hashlib
import json

import numpy as np

from audit.stats.neurips2023 import per_example_epsilon, resolution
from audit.pipeline import run_audit
from audit.stats.tost import tost_welch
from helpers import small_spec


def test_every_method_gets_the_equivalence_tests_with_their_model_counts(tmp_path):
    results = run_audit(small_spec(tmp_path, audit={"seeds": 3}), tmp_path / "out", show_progress=False)
    equivalence = results["equivalence"]
    assert set(equivalence) == set(results["metrics"])
    for label, tests in equivalence.items():
        assert tests["n_models"] == 3 and tests["resolution"] == resolution(3)
        assert len(tests["neurips2023"]["eps"]) == tests["n_examples"] == results["scope"]["forget_size"]
        assert tests["neurips2023"]["eps_median"] == float(np.median(tests["neurips2023"]["eps"]))
        # each ε beside the dataset index of its forget example: the forget request, in the order of the ε list
        indices = tests["neurips2023"]["forget_indices"]
        assert len(indices) == len(tests["neurips2023"]["eps"])
        assert hashlib.sha256("".join(f"{i}\n" for i in sorted(indices)).encode()).hexdigest() == \
            results["scope"]["forget_digest"]
        for name in ("UA", "RA", "TA", "MIA"):
            expected = tost_welch(results["metrics"][label][name]["per_seed"],
                                  results["populations"]["reference_retrain"][name]["per_seed"], 0.02)
            assert tests["tost"][name]["welch"]["equivalent"] == expected["equivalent"]
    assert per_example_epsilon(np.zeros((3, 1)), np.zeros((3, 1)))[0] == 0.0
    json.dumps(results, allow_nan=False)
