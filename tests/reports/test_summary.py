"""The first page: rules as headings, the grid of methods against rules, what was audited."""

from reports.summary import audited_sentence, short_rule, verdict_grid


def test_rules_become_short_headings():
    assert short_rule('equivalence.tost.UA == "equivalent"') == "tost UA = equivalent"
    assert short_rule("equivalence.per_example.ks.fraction_different <= 0.05") == "per example ks fraction different ≤ 0.05"
    assert short_rule("mia.ulira.auc <= 0.55") == "ulira auc ≤ 0.55"
    assert short_rule("unlearning finishes with finite weights on every seed") == \
        "unlearning finishes with finite weights on every seed"


def test_the_grid_has_a_cell_per_method_and_rule_with_its_deciding_number():
    results = {
        "verdicts": [
            {"method": "identity", "rule": "mia.ulira.auc <= 0.55", "value": 0.58612, "verdict": "INCONCLUSIVE", "reason": "straddles"},
            {"method": "salun", "rule": "mia.ulira.auc <= 0.55", "value": 0.4911, "verdict": "PASS", "reason": "below"},
            {"method": "salun", "rule": 'equivalence.tost.UA == "equivalent"', "value": "equivalent", "verdict": "PASS"},
        ],
        "method_verdicts": {"identity": {"verdict": "FAIL", "control": "identity"}, "salun": {"verdict": "PASS", "control": None}},
    }
    grid = verdict_grid(results)
    assert [heading for _, heading in grid["columns"]] == ["ulira auc ≤ 0.55", "tost UA = equivalent"]
    (identity, *_, cells_i), (salun, verdict, control, cells_s) = grid["rows"]
    assert identity == "identity" and cells_i[0].shown == "0.586" and cells_i[0].verdict == "INCONCLUSIVE"
    assert cells_i[1] is None  # the rule gave no verdict for identity
    assert (salun, verdict, control) == ("salun", "PASS", None) and [c.shown for c in cells_s] == ["0.491", "equivalent"]


def test_the_audited_sentence_names_the_methods_but_not_the_controls():
    results = {"scope": {"forget_kind": "class", "forget_classes": [3], "forget_size": 180, "dataset": "digits",
                         "model": "cnn", "models_per_population": 8},
               "method_verdicts": {"identity": {"control": "identity"}, "salun": {"control": None}}}
    assert audited_sentence(results) == ("salun, asked to forget 180 training points (class forgetting, classes 3) of "
                                         "digits from the cnn model, each judged on 8 models against as many "
                                         "retrained without those points.")
