"""The numbers the `mia` section gives a method's rules: `mia.<result>.<number>`, where each
attack of attacks.run gives one or more results (threshold: one per signal, svc: one per
feature, lira: offline and two-sided), and a plugin attack one of its own name."""

from __future__ import annotations

from typing import Any

from attacks.mia.threshold import SIGNS
from audit.config.rule_paths import ANY, SUMMARY, Shape, paths
from audit.config.sections import ATTACK_NAMES
from audit.core.registry import ATTACKS
from audit.stats.signals import FEATURES

UNITS: Shape = {side: {"members": None, "nonmembers": None, "shared": None} for side in ("models", "examples")}
# attack_summary (attacks.mia.roc) of one attack on one target
GAME: Shape = {
    "n_target_models": None, "n_shadow_models": None, "n_members": None, "n_nonmembers": None,
    "balanced_accuracy": {"value": None, "se": None, "resamples": None},
    "advantage": {"value": None, "se": None, "resamples": None},
    "auc": {"value": None, "se": None, "resamples": None, "ci95_by_unit": {"examples": {"se": None},
                                                                          "models": {"se": None}}},
    "epsilon_lower_bound": {name: None for name in ("value", "alpha", "delta", "threshold", "fpr_upper", "fnr_upper",
                                                    "false_positives", "false_negatives", "n_members",
                                                    "n_nonmembers")},
    "units": UNITS,
    "per_class_auc": {ANY: {"value": None, "se": None, "resamples": None, "units": UNITS}},
}
SVC: Shape = {"n_target_models": None, "n_shadow_models": None, "n_forget": None, "n_nonmembers": None,
              "mia_efficacy": SUMMARY,
              "signal": {"original": None, "reference_retrain": None, "standard_error": None, "separates": None}}
RESULTS: dict[str, dict[str, Shape]] = {  # built-in attack -> its results' shapes
    "threshold": {f"threshold_{name}": GAME for name in SIGNS},
    "svc": {f"svc_{feature}": SVC for feature in FEATURES},
    "lira": {"lira_offline": GAME, "lira_offline_two_sided": GAME},
    "rmia": {"rmia_offline": {**GAME, "gamma": None, "a": None, "trim": None, "population_size": None}},
    "ulira": {"ulira": {**GAME, "n_reference_models": None,
                        "references_per_example": {"unlearned": None, "never_trained": None}}},
}


def _plugins(spec: Any) -> set[str]:
    """The plugin attacks a rule may name: those in attacks.run and every one registered."""
    return {name for name in (*spec.attacks.run, *ATTACKS.names()) if name not in ATTACK_NAMES}


def mia_rule_paths(spec: Any) -> set[str]:
    """Every result of every attack, run by this spec or not: a rule on one it leaves out is read
    after the run, which says what to add to attacks.run."""
    shapes = {name: shape for results in RESULTS.values() for name, shape in results.items()}
    shapes |= {name: GAME for name in _plugins(spec) if name not in shapes}
    return paths(shapes, "mia")


def _attack_of(result: str, spec: Any) -> str | None:
    for attack, results in RESULTS.items():
        if result in results:
            return attack
    return result if result in _plugins(spec) else None


def mia_why_absent(spec: Any, path: tuple[str, ...]) -> str | None:
    """Why a method has no `mia.<result>`: its attack was not run, or ran without a result for it."""
    if len(path) < 2 or (attack := _attack_of(path[1], spec)) is None:
        return None
    if attack not in spec.attacks.run:
        return f"{path[1]} comes from attack {attack!r}, which was not run; add it to attacks.run"
    if attack == "ulira":
        return ("U-LiRA has no result for this method: it needs the shadow models the method unlearns, "
                "and at least one of them diverged")
    return f"attack {attack!r} ran but gave this method no {path[1]} result (too few usable models)"
