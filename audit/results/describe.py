"""The plain-words parts of results.json: what each test assumes and resolves, and what the
audit cannot show. Reports print them as they are; every number in them comes from the
results they describe."""

from __future__ import annotations

from typing import Any

from audit.stats import power
from audit.config.sections import ATTACK_NAMES


def _range(values: list[float], fmt: str = "{:.3g}") -> str:
    low, high = min(values), max(values)
    return fmt.format(low) if low == high else f"{fmt.format(low)} to {fmt.format(high)}"


def tests_run(spec: Any, scope: dict[str, Any], mia: dict[str, Any], equivalence: dict[str, Any]) -> list[dict]:
    """One entry per kind of test that ran: name, version, assumptions, N, resolution, α."""
    n = scope["models_per_population"]
    tests = [{
        "name": "Metrics against retraining (UA, RA, TA, MIA-Efficacy, Avg. Gap)", "version": "1",
        "assumptions": "each seed's model is an independent draw; the 95 % Student-t interval of a mean "
                       "assumes roughly normal per-seed values",
        "n": f"{n} models per population", "resolution": "the width of each interval", "alpha": 0.05,
    }]
    if mia.get("methods"):
        tests.append(_membership_test(spec, n, mia))
    single = [e["per_example"]["consistency"] for e in equivalence.values() if "consistency" in e["per_example"]]
    if single:
        tests.append({
            "name": "Per-example consistency of a single model's φ with the retrained models' (Student-t "
                    "prediction interval, Benjamini-Hochberg)",
            "version": single[0]["version"],
            "assumptions": "each forget example's φ over the retrained models is roughly normal; the audited model "
                           "is one draw, compared with where a new retrained model would fall",
            "n": f"1 audited model against {single[0]['n_reference_models']} retrained models, "
                 f"{single[0]['n_examples']} forget examples",
            "resolution": "an example is flagged only if its φ lies outside the retrained models' prediction "
                          "interval after the false-discovery correction",
            "alpha": spec.equivalence.alpha,
        })
    entries = [e for e in equivalence.values() if "neurips2023" in e]
    return tests + (_equivalence_tests(spec, entries) if entries else [])


def _membership_test(spec: Any, n: int, mia: dict[str, Any]) -> dict[str, Any]:
    recipe = mia.get("recipe", {})
    return {
        "name": f"Membership inference ({', '.join(spec.attacks.run)})",
        "version": ", ".join(sorted({f"{a} {s['version']}" for m in mia["methods"].values() for a, s in m.items()
                                     if isinstance(s, dict) and "version" in s and not a.startswith("svc_")})),
        "assumptions": "shadow models trained with the audit's recipe on random halves of the pool stand for "
                       "the unknown training runs; LiRA and U-LiRA model each example's score as Gaussian, "
                       "every scored example fitted on as many reference models "
                       f"({_references(mia)}); examples and models are the independent units: "
                       "AUC intervals are a two-way bootstrap over both, and each ε lower bound counts one "
                       "trial per example (one model drawn per example), not one per model and example",
        "n": f"{n} target models per method, {recipe.get('n_shadow_models', 0)} shadow models, "
             f"{mia.get('n_forget')} forget and {mia.get('n_test')} test examples",
        "resolution": f"AUC to about ±{_half_width(mia)} (two-way bootstrap); TPR at 0.1 % FPR needs 1,000 or "
                      "more non-members, and the report names how many stand behind each rate",
        "alpha": spec.attacks.alpha,
    }


def _equivalence_tests(spec: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The retrain-equivalence tests of the methods with a population of models on each side."""
    resolutions = [e["resolution"] for e in entries]
    return [{
        "name": "NeurIPS 2023 competition per-example ε and score", "version": entries[0]["neurips2023"]["version"],
        "assumptions": "φ is the logit-scaled confidence on each forget example; ε is a point estimate with no "
                       "interval; the competition's rule family, δ = 1e-5, capped at 50",
        "n": f"{_range([e['n_models'] for e in entries], '{}')} models per side",
        "resolution": f"up to ln(N − 1) = {_range(resolutions)}; populations drawn alike already give a median of "
                      f"{_range([e['neurips2023']['null']['eps_median'] for e in entries])}",
        "alpha": None,
    }, {
        "name": "High-confidence per-example ε lower bound",
        "version": "1",
        "assumptions": "thresholds chosen on one half of the models, rates bounded by Clopper-Pearson on the other",
        "n": f"{_range([e['high_confidence']['n_per_side_bounding'] for e in entries], '{}')} models per side "
             "in the bounding half",
        "resolution": f"at most {_range([e['high_confidence']['max_certifiable'] for e in entries])} can be certified",
        "alpha": spec.equivalence.alpha,
    }, {
        "name": "Per-example two-sample tests (KS and permutation) with Benjamini-Hochberg",
        "version": "1",
        "assumptions": "models are independent draws; Benjamini-Hochberg assumes independent or positively "
                       "dependent p-values across forget examples",
        "n": f"{entries[0]['n_examples']} forget examples",
        "resolution": f"smallest KS p-value {_range([e['per_example']['ks']['min_p_value'] for e in entries])}"
                      + _ks_rule_power(spec, entries[0]),
        "alpha": spec.equivalence.alpha,
    }, {
        "name": "TOST equivalence of UA, RA, TA and MIA-Efficacy (Welch and bootstrap)",
        "version": "1",
        "assumptions": "Welch: the seed means are roughly normal; bootstrap: percentile intervals; equivalence "
                       "needs both one-sided tests to reject",
        "n": f"{_range([e['n_models'] for e in entries], '{}')} models per side",
        "resolution": f"margin ±{spec.equivalence.margin:g}; margins the tests could show at 80 % power: "
                      f"{_detectable_margins(entries)}",
        "alpha": spec.equivalence.alpha,
    }]


def _ks_rule_power(spec: Any, entry: dict[str, Any]) -> str:
    """What the policy's KS rule can resolve at this N, if the policy has one."""
    from audit.config.policy import parse_rule  # the rule's own threshold is its tolerated share

    ks = entry["per_example"]["ks"]
    for text in spec.policy.rules:
        rule = parse_rule(text)
        if rule.path[-3:] == ("per_example", "ks", "fraction_different") and rule.op in ("<=", "<"):
            guard = power.ks_rule_guard(ks["n_models"], ks["n_examples"], float(rule.threshold), ks["alpha"])
            needed = (f"about {guard['models_needed']} models per side reach {power.POWER:.0%}"
                      if guard["models_needed"] else f"not even {power.MAX_MODELS} models per side reach {power.POWER:.0%}")
            return (f"; the rule `{rule.text}` fails {guard['effect']} with power {guard['power']:.0%} at "
                    f"{ks['n_models']} models per side ({needed}), and cannot PASS below {power.POWER:.0%}")
    return ""


def _detectable_margins(entries: list[dict[str, Any]]) -> str:
    """The range of the margins the TOST tests could show at 80 % power, over methods and metrics."""
    margins = [t["welch"]["detectable_margin"] for e in entries for t in e["tost"].values()
               if t["welch"]["detectable_margin"] is not None]
    return _range(margins) if margins else "none (too few models)"


def _references(mia: dict[str, Any]) -> str:
    counts = mia.get("references_per_example")
    return (f"{counts['forget']} OUT shadows for every forget and every test point" if counts
            else "no shadow models")


def _half_width(mia: dict[str, Any]) -> str:
    widths = [(s["auc"]["ci95"][1] - s["auc"]["ci95"][0]) / 2 for m in mia["methods"].values() for s in m.values()
              if isinstance(s, dict) and isinstance(s.get("auc"), dict) and s["auc"].get("ci95")]
    return f"{max(widths):.3f}" if widths else "?"


def limitations(spec: Any, mia: dict[str, Any], equivalence: dict[str, Any], rows: list[dict],
                methods: dict[str, str]) -> list[str]:
    """What this audit cannot show, in the order a reader should weigh them."""
    out = []
    populations = [e for e in equivalence.values() if "neurips2023" in e]
    if spec.subject is not None:
        out.append("Each audited checkpoint is a single model, so the tests that compare a population of unlearned "
                   "models with the retrained one could not run: the competition ε and its high-confidence bound, "
                   "the per-example KS and permutation tests, TOST on UA, RA, TA and MIA-Efficacy, and U-LiRA "
                   "(which also needs the method itself, to unlearn shadow models). The checkpoints are held "
                   "instead to the retrained population example by example (the consistency test), by "
                   "membership inference against it, by their metrics and by relearning. The retrained models "
                   "train on salun's split of the data with the [train] recipe: the comparison assumes the "
                   "checkpoints' original trained that way, on the same pool.")
    if populations:
        e = populations[0]
        out.append(f"With {e['n_models']} models per side, the competition's ε is resolvable only up to "
                   f"ln(N − 1) = {e['resolution']:.2f}; a leak larger than that shows as 50, the metric's cap, and "
                   f"a value below "
                   f"{e['neurips2023']['null']['eps_median']:.2f} cannot be told from chance.")
    elif spec.subject is None:
        out.append("No retrain-equivalence test ran: each side needs at least 2 usable models.")
    missing = [name for name in ATTACK_NAMES if name not in spec.attacks.run]
    if missing:
        out.append(f"Membership-inference attacks not run: {', '.join(missing)}.")
    if "retain" not in spec.relearn.run:
        out.append("No retain relearning attack ran: knowledge an unlearning method hides rather than removes, "
                   "and that fine-tuning on retain data would bring back, does not show in these probes.")
    elif spec.relearn.steps:
        out.append(f"Relearning was tried with {spec.relearn.steps} fine-tuning steps at learning rate "
                   f"{spec.relearn.lr:g} on {spec.relearn.aux_size} retain points; a stronger attacker may recover more.")
    if not spec.backdoor.enabled:
        out.append("No backdoor was planted, so deletion was not verified by triggered queries (Athena).")
    return out + _common_limitations(rows, methods)


def _common_limitations(rows: list[dict], methods: dict[str, str]) -> list[str]:
    out = []
    undecided = [r for r in rows if r["verdict"] == "INCONCLUSIVE"]
    if undecided:
        out.append(f"{len(undecided)} of {len(rows)} rule evaluations could not decide with these models "
                   "(their reasons are listed with the verdicts).")
    for control in ("identity", "retrain"):
        if control not in methods.values():
            out.append(f"No {control} control: the audit cannot check that its policy "
                       f"{'fails a no-op' if control == 'identity' else 'passes a true retrain'}.")
    out.append("The findings hold for models trained with this recipe, data and seeds; they are statistical "
               "statements about populations, not a proof about any single deployed model.")
    return out


def generation_tests_run(spec: Any, scope: dict[str, Any], equivalence: dict[str, Any],
                         relearn: dict[str, Any]) -> list[dict]:
    """The tests of a generation audit, as `tests_run` gives them for classifiers."""
    n, g = scope["models_per_population"], spec.generation
    tests = [{
        "name": "Judge's view of the samples: UA (generation), probability of the forgotten class, accuracy of "
                "the other classes' samples, Fréchet distance on judge features",
        "version": "1",
        "assumptions": f"a {spec.model.arch} judge trained on the whole pool, independent of the generators, "
                       f"classifies {g.samples} samples per class and model (guidance {g.guidance:g}); its own "
                       "errors count as the generator's",
        "n": f"{n} generators per population, {g.samples} samples per class each",
        "resolution": "the width of each interval over seeds; the Fréchet distance with this few samples is "
                      "biased upwards and compares only within this audit",
        "alpha": 0.05,
    }]
    if equivalence:
        entries = list(equivalence.values())
        tests.append({
            "name": "TOST equivalence of UA, the forgotten-class probability and retained accuracy "
                    "(Welch and bootstrap)",
            "version": "1",
            "assumptions": "one value per generator (its samples' mean); the seed means are roughly normal",
            "n": f"{_range([e['n_models'] for e in entries], '{}')} generators per side",
            "resolution": f"margin ±{spec.equivalence.margin:g}; margins the tests could show at 80 % power: "
                          f"{_detectable_margins(entries)}",
            "alpha": spec.equivalence.alpha,
        })
    if relearn:
        tests.append({
            "name": "DiMRA: fine-tuning on forget-free data, the forgotten class's generation rate at checkpoints",
            "version": relearn["version"],
            "assumptions": f"Adam at lr {spec.relearn.lr:g}, batch {spec.relearn.batch_size}, on "
                           f"{spec.relearn.aux_size} retain images; each retrained generator is attacked identically",
            "n": f"{n} seed pairs",
            "resolution": f"{g.samples} samples per checkpoint; recovery interval over seeds",
            "alpha": spec.equivalence.alpha,
        })
    return tests


def generation_limitations(spec: Any, equivalence: dict[str, Any], rows: list[dict],
                           methods: dict[str, str]) -> list[str]:
    out = [f"The judge decides what a sample shows; a sample it misreads counts for the class it names. "
           f"Each generator was judged on {spec.generation.samples} samples per class."]
    if not equivalence:
        out.append("No retrain-equivalence test ran: each side needs at least 2 usable generators.")
    if "retain" not in spec.relearn.run:
        out.append("DiMRA did not run: a forgotten class that fine-tuning on other data brings back would not show.")
    else:
        out.append(f"DiMRA fine-tuned for {spec.relearn.steps} steps at learning rate {spec.relearn.lr:g}; "
                   "a longer or stronger attack may recover more.")
    out.append("Membership inference and backdoor verification were not run: salun defines them for classifiers.")
    return out + _common_limitations(rows, methods)

