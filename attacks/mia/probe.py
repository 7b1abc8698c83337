"""The membership-inference probe: every configured attack against every target population.

Targets are the audit's originals, its reference retrains and each method's unlearned models.
The population attacks (a threshold on each signal) and the offline per-example attacks
(LiRA, RMIA) tell the forget set (members: label 1) from the test set (non-members) on the
target models, pooled over the models. U-LiRA plays its balanced game on the forget set:
the method's unlearned models (label 1) against the reference retrains (label 0), with
per-example Gaussians from shadow models unlearned by the same method. The shadow models
themselves play the leave-one-out LiRA game over the whole pool (IN vs OUT), which is where
online LiRA is defined. Everything reads stored observations.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from attacks.mia import lira, rmia, threshold, ulira
from attacks.mia.roc import attack_summary, auc
from attacks.mia.rule_paths import mia_rule_paths, mia_why_absent
from audit.stats.signals import FEATURES, confidence, logit_scaled_confidence
from attacks.mia.exposed import most_exposed
from attacks.mia.units import Units, grouped_auc_intervals
from audit.data.datasets import AuditData
from audit.tasks.classification.metrics import mia_efficacy_of
from audit.engine.observe import StoredObservations
from audit.engine.job import Plan
from audit.core.seeds import numpy_generator
from audit.data.shadows import keep_per_column, references_of_test_points, shadow_forget_positions, shadow_membership
from audit.config.sections import ATTACK_NAMES
from audit.config.spec import Spec
from audit.core.errors import SalunInputError
from audit.core.probes import MembershipAttack, ProbeContext, SectionProbe, ShadowLogits, membership_attack
from audit.core.registry import PROBES
from audit.stats.basics import summarize
from audit.engine.store import Store

SVC_VERSION = "1"
_RECIPES: dict[tuple, dict[str, Any]] = {}  # the shadows' own game, reused while the shadows are the same


def _summary(spec: Spec, positives: np.ndarray, negatives: np.ndarray, *seed: object,
             shared_models: bool = True, shared_examples: bool = False) -> dict[str, Any]:
    """An attack's summary over (models, examples) scores of members and non-members: the same
    target models score both sides (`shared_models`), or the same examples stand on both
    sides (`shared_examples`), and the intervals and bounds resample and count those units."""
    scores = np.concatenate([np.ravel(positives), np.ravel(negatives)])
    is_member = np.concatenate([np.ones(np.size(positives), bool), np.zeros(np.size(negatives), bool)])
    units = Units.grid(np.shape(positives), np.shape(negatives), shared_models=shared_models,
                       shared_examples=shared_examples)
    return _scored(spec, scores, is_member, units, *seed)


def _scored(spec: Spec, scores: np.ndarray, is_member: np.ndarray, units: Units, *seed: object) -> dict[str, Any]:
    a = spec.attacks
    return attack_summary(scores, is_member, numpy_generator("mia", *seed), alpha=a.alpha, delta=a.delta,
                          resamples=a.bootstrap, units=units)


def _per_class(spec: Spec, positives: np.ndarray, negatives: np.ndarray, labels: np.ndarray, *seed: object,
               negative_labels: np.ndarray | None = None, shared_models: bool = True,
               shared_examples: bool = False) -> dict[str, dict[str, Any]]:
    """AUC of each forgotten class's points against the non-members: all of them, or only those
    of the same class when `negative_labels` gives the non-members' classes; each with its
    two-way interval over the models and the examples, and the units behind it."""
    scores = np.concatenate([positives.ravel(), negatives.ravel()])
    is_member = np.concatenate([np.ones(positives.size, bool), np.zeros(negatives.size, bool)])
    units = Units.grid(positives.shape, negatives.shape, shared_models=shared_models, shared_examples=shared_examples)
    within = negative_labels is not None
    groups = np.concatenate([np.tile(labels, len(positives)),
                             np.tile(negative_labels, len(negatives)) if within else np.full(negatives.size, -1)])
    intervals = grouped_auc_intervals(scores, is_member, units, groups, numpy_generator("mia", *seed, "per_class"),
                                      spec.attacks.bootstrap, within_groups=within) if spec.attacks.bootstrap else {}
    out = {}
    for c in np.unique(labels):
        cells = (groups == c) if within else (groups == c) | ~is_member
        entry = {"value": auc(scores[cells], is_member[cells]),
                 **intervals.get(c, {"ci95": None, "resamples": 0}),
                 "units": Units(units.models[cells], units.examples[cells]).counts(is_member[cells])}
        out[str(int(c))] = entry
    return out


def _entry(spec: Spec, data: AuditData, positives: np.ndarray, negatives: np.ndarray, labels: np.ndarray,
           n_models: int, n_shadows: int, *seed: object, version: str, shared_models: bool = True,
           shared_examples: bool = False, negative_labels: np.ndarray | None = None) -> dict[str, Any]:
    return {
        "version": version,
        "n_target_models": n_models,
        "n_shadow_models": n_shadows,
        **_summary(spec, positives, negatives, *seed, shared_models=shared_models, shared_examples=shared_examples),
        "per_class_auc": _per_class(spec, positives, negatives, labels, *seed, negative_labels=negative_labels,
                                    shared_models=shared_models, shared_examples=shared_examples),
        "most_exposed": most_exposed(positives, data) if positives.shape[1] == len(data.forget) else [],
    }


@dataclass
class _Shadows:
    """The shadow models' signals on the forget and test points, with the references each point is
    scored against: every shadow is OUT for a test point, and each keeps half of them, as many as a
    forget point has."""

    keys: list[str]
    out_f: np.ndarray
    out_t: np.ndarray
    phi_f: np.ndarray
    phi_t: np.ndarray
    p_ref_f: np.ndarray
    p_ref_t: np.ndarray
    a: float


def _shadows(spec: Spec, data: AuditData, plan: Plan, obs: StoredObservations, out: dict[str, Any]) -> _Shadows | None:
    """The shadows' own game in `out["recipe"]`, and what the attacks on targets need of them."""
    attacks = spec.attacks
    shadow_keys = obs.usable(plan.shadows)
    if not shadow_keys:
        return None
    if len(shadow_keys) < len(plan.shadows):
        raise RuntimeError("a shadow model has no usable observation; rerun the audit")
    test_mask, forget = data.eval_test_mask, data.forget
    membership = shadow_membership(len(data.pool), attacks.lira.shadows, spec.data.seed)
    phi_pool, phi_test = obs.signal(shadow_keys, logit_scaled_confidence)
    p_pool, p_test = obs.signal(shadow_keys, confidence)
    loss_scores, _ = obs.signal(shadow_keys, lambda z, y: threshold.threshold_scores("loss", z, y))
    recipe_key = (spec.digest(), tuple(shadow_keys))  # the same shadows give the same game
    if recipe_key not in _RECIPES:
        _RECIPES.clear()
        _RECIPES[recipe_key] = _recipe_game(spec, phi_pool, p_pool, loss_scores, membership)
    out["recipe"] = copy.deepcopy(_RECIPES[recipe_key])
    a = attacks.rmia.a if attacks.rmia.a is not None else out["recipe"]["rmia_a"]
    out_f = ~membership[:, forget]
    out_t = references_of_test_points(int(test_mask.sum()), len(shadow_keys), spec.data.seed)
    p_ref_f = rmia.reference_probability(p_pool[:, forget], ~out_f, True, a, attacks.rmia.trim)
    p_ref_t = rmia.reference_probability(p_test[:, test_mask], ~out_t, True, a, attacks.rmia.trim)
    out["references_per_example"] = {"forget": int(out_f.sum(axis=0).min()), "test": int(out_t.sum(axis=0).min())}
    return _Shadows(shadow_keys, out_f, out_t, phi_pool[:, forget], phi_test[:, test_mask], p_ref_f,
                    p_ref_t, a)


def mia_results(spec: Spec, data: AuditData, plan: Plan, store: Store,
                obs: StoredObservations | None = None) -> dict[str, Any]:
    """results.json's `mia` section: {"recipe": {...}, "populations": {name: {attack: summary}},
    "methods": {label: {attack: summary}}}."""
    if not spec.attacks.run:
        return {}
    obs = obs or StoredObservations(store, plan, data)
    targets = {("populations", "original"): plan.originals, ("populations", "reference_retrain"): plan.retrains,
               **{("methods", label): keys for label, keys in plan.unlearned.items()}}
    out: dict[str, Any] = {"n_forget": len(data.forget), "n_test": int(data.eval_test_mask.sum()),
                           "populations": {}, "methods": {}}
    shadows = _shadows(spec, data, plan, obs, out) if plan.shadows else None
    for (group, target), keys in targets.items():
        keys = obs.usable(keys)
        if keys:
            out[group][target] = _target_entries(spec, data, plan, obs, (group, target), keys, shadows)
    _svc_signal(out)
    return out


def _target_entries(spec: Spec, data: AuditData, plan: Plan, obs: StoredObservations, where: tuple[str, str],
                    keys: list[str], shadows: _Shadows | None) -> dict[str, Any]:
    """Every attack in attacks.run on one target population: the built-ins, then each plugin's."""
    attacks, (group, target) = spec.attacks, where
    test_mask, forget = data.eval_test_mask, data.forget
    forget_labels = obs.y_pool[forget]
    results: dict[str, Any] = {}
    pool_phi, test_phi = obs.signal(keys, logit_scaled_confidence)
    if "threshold" in attacks.run:
        for name in threshold.SIGNS:
            pool_s, test_s = obs.signal(keys, lambda z, y, n=name: threshold.threshold_scores(n, z, y))
            results[f"threshold_{name}"] = _entry(
                spec, data, pool_s[:, forget], test_s[:, test_mask], forget_labels, len(keys), 0,
                group, target, "threshold", name, version=threshold.VERSION)
    if "svc" in attacks.run:
        results.update(_svc_entries(obs, keys, data))
    if "lira" in attacks.run and shadows:
        for name, score in (("lira_offline", lira.offline_scores),
                            ("lira_offline_two_sided", lira.offline_two_sided_scores)):
            positives = score(pool_phi[:, forget], shadows.phi_f, ~shadows.out_f, attacks.lira.scale, shadows.out_f)
            negatives = score(test_phi[:, test_mask], shadows.phi_t, ~shadows.out_t, attacks.lira.scale, shadows.out_t)
            results[name] = _entry(spec, data, positives, negatives, forget_labels, len(keys),
                                   len(shadows.keys), group, target, name, version=lira.VERSION)
    if "rmia" in attacks.run and shadows:
        pool_p, test_p = obs.signal(keys, confidence)
        results["rmia_offline"] = _rmia_entry(spec, data, pool_p[:, forget], test_p[:, test_mask], shadows.p_ref_f,
                                              shadows.p_ref_t, forget_labels, len(keys), len(shadows.keys),
                                              where, shadows.a)
    if "ulira" in attacks.run and group == "methods" and target in plan.shadow_unlearned:
        membership = shadow_membership(len(data.pool), attacks.lira.shadows, spec.data.seed)
        entry = _ulira_entry(spec, data, plan, obs, target, keys, membership)
        if entry is not None:
            results["ulira"] = entry
    for name in (name for name in attacks.run if name not in ATTACK_NAMES):
        attack = membership_attack(name)
        if name in results:
            raise SalunInputError(f"attacks.run: attack '{name}' would overwrite the built-in result of that name")
        if shadows or not attack.needs_shadows:
            results[name] = _plugin_entry(spec, data, obs, attack, name, keys, where, shadows)
    return results


def _plugin_entry(spec: Spec, data: AuditData, obs: StoredObservations, attack: MembershipAttack, name: str,
                  keys: list[str], where: tuple[str, str], shadows: _Shadows | None) -> dict[str, Any]:
    """A registered MembershipAttack: the forget set (members) against the test set (non-members)."""
    test_mask, forget = data.eval_test_mask, data.forget

    sides = []
    for part, mask, labels, out in (("pool_logits", forget, obs.y_pool[forget], shadows and shadows.out_f),
                                    ("test_logits", test_mask, obs.y_test[test_mask], shadows and shadows.out_t)):
        logits = np.stack([obs.arrays(key)[part][mask] for key in keys])
        reference = None
        if attack.needs_shadows:
            reference = ShadowLogits(np.stack([obs.arrays(key)[part][mask] for key in shadows.keys]), out)
        scores = np.asarray(attack.scores(logits, labels, reference), dtype=np.float64)
        if scores.shape != logits.shape[:2]:
            raise SalunInputError(f"attacks.run: attack '{name}' scored logits of shape {logits.shape} with shape "
                                  f"{scores.shape}; expected {logits.shape[:2]} (models, examples)")
        sides.append(scores)
    return _entry(spec, data, *sides, obs.y_pool[forget], len(keys), len(shadows.keys) if attack.needs_shadows else 0,
                  *where, name, version=str(attack.version))


def _svc_signal(out: dict[str, Any]) -> None:
    """Mark each SVC feature with whether it tells the originals (forget set trained on) from the
    reference retrains (never trained on) at all: a feature whose MIA-Efficacy is the same on
    both carries no membership signal here, and its numbers for a method are no finding."""
    populations = out["populations"]
    if "original" not in populations or "reference_retrain" not in populations:
        return
    for feature in FEATURES:
        name = f"svc_{feature}"
        if name not in populations["original"] or name not in populations["reference_retrain"]:
            continue
        o, r = (populations[p][name]["mia_efficacy"] for p in ("original", "reference_retrain"))
        if o["std"] is None or r["std"] is None:
            continue
        se = float(np.sqrt(o["std"] ** 2 / o["n"] + r["std"] ** 2 / r["n"]))
        gap = abs(o["mean"] - r["mean"])
        separates = gap > 2 * se if se > 0 else gap > 0
        signal = {"original": o["mean"], "reference_retrain": r["mean"], "standard_error": se,
                  "separates": bool(separates),
                  "why": (f"MIA-Efficacy {o['mean']:.3f} on the originals against {r['mean']:.3f} on the reference "
                          f"retrains (difference {gap:.3f}, standard error {se:.3f})"
                          + ("" if separates else ": the feature does not tell trained from untrained here, so "
                             "its values for a method are no finding"))}
        for group in ("populations", "methods"):
            for attacks in out[group].values():
                if name in attacks:
                    attacks[name]["signal"] = signal


def _svc_entries(obs: StoredObservations, keys: list[str], data: AuditData) -> dict[str, Any]:
    """The SVC attack on each feature, per target model: MIA-Efficacy (the fraction of the
    forget set predicted non-member); its `confidence` view is the metrics' MIA-Efficacy."""
    observations = [obs.arrays(key) for key in keys]
    sizes = {"n_forget": len(data.forget), "n_nonmembers": int(data.eval_test_mask.sum())}
    return {f"svc_{feature}": {"version": SVC_VERSION, "n_target_models": len(keys), "n_shadow_models": 0, **sizes,
                               "mia_efficacy": summarize([mia_efficacy_of(o, data, feature) for o in observations],
                                                         bounds=(0.0, 1.0))}
            for feature in FEATURES}


def _recipe_game(spec: Spec, phi: np.ndarray, p: np.ndarray, loss_scores: np.ndarray,
                 membership: np.ndarray) -> dict[str, Any]:
    """Leave-one-out over the shadow models: each in turn is the target, the others the references."""
    scale = spec.attacks.lira.scale
    n = len(membership)
    out: dict[str, Any] = {"n_shadow_models": n, "n_examples": int(membership.shape[1])}

    def summary(scores: np.ndarray, is_member: np.ndarray, name: str) -> dict[str, Any]:
        return {"n_target_models": n, "n_shadow_models": n - 1,
                **_scored(spec, scores.ravel(), is_member.ravel(), Units.matrix(scores.shape), "recipe", name)}

    for name, fn in (("lira_online", lira.online_scores), ("lira_offline", lira.offline_scores),
                     ("lira_offline_two_sided", lira.offline_two_sided_scores)):
        scores, is_member = lira.shadow_game(phi, membership, lambda t, ph, i, o, fn=fn: fn(t, ph, i, scale, o),
                                             numpy_generator("mia", "recipe references", name))
        out[name] = summary(scores, is_member, name)
    out["threshold_loss"] = summary(loss_scores, membership, "threshold_loss")
    out["rmia_a"] = spec.attacks.rmia.a
    if out["rmia_a"] is None:
        # shadow 0 is the held-out reference model whose membership is known; its members and
        # non-members keep as many OUT references each (one fewer than half of the others)
        outside = ~membership[1:]
        matched = keep_per_column(outside, int(outside.sum(axis=0).min()), numpy_generator("mia", "rmia a"))
        out["rmia_a"] = float(rmia.tune_a(p[0], membership[0], p[1:], ~matched,
                                          gamma=spec.attacks.rmia.gamma, trim=spec.attacks.rmia.trim))
    return out


def _rmia_entry(spec: Spec, data: AuditData, p_forget: np.ndarray, p_test: np.ndarray, p_ref_f: np.ndarray,
                p_ref_t: np.ndarray, labels: np.ndarray, n_models: int, n_shadows: int, target: tuple[str, str],
                a: float) -> dict[str, Any]:
    """Offline RMIA: the population z is every other test point; the rest are the non-members scored."""
    z = np.arange(p_test.shape[1]) % 2 == 0
    gamma = spec.attacks.rmia.gamma
    positives = rmia.scores(p_forget, p_ref_f, p_test[:, z], p_ref_t[z], gamma)
    negatives = rmia.scores(p_test[:, ~z], p_ref_t[~z], p_test[:, z], p_ref_t[z], gamma)
    entry = _entry(spec, data, positives, negatives, labels, n_models, n_shadows, *target, "rmia",
                   version=rmia.VERSION)
    return {**entry, "gamma": gamma, "a": a, "trim": spec.attacks.rmia.trim, "population_size": int(z.sum())}


def _ulira_entry(spec: Spec, data: AuditData, plan: Plan, obs: StoredObservations, target: str,
                 keys: list[str],
                 membership: np.ndarray) -> dict[str, Any] | None:
    shadow_keys = obs.usable(plan.shadow_unlearned[target])
    if len(shadow_keys) < len(plan.shadow_unlearned[target]):
        return None  # the method diverged on a shadow: its own results say so
    reference = obs.usable(plan.retrains)
    forget = data.forget
    shadows = spec.attacks.lira.shadows
    forgot = np.zeros_like(membership)
    for s in range(shadows):
        forgot[s, shadow_forget_positions(data, s, shadows, spec.data.seed)] = True
    shadow_phi, _ = obs.signal(shadow_keys, logit_scaled_confidence)
    target_phi, _ = obs.signal(keys, logit_scaled_confidence)
    reference_phi, _ = obs.signal(reference, logit_scaled_confidence)
    scale = spec.attacks.lira.scale
    args = (shadow_phi[:, forget], forgot[:, forget], ~membership[:, forget], scale)
    positives = ulira.scores(target_phi[:, forget], *args)
    negatives = ulira.scores(reference_phi[:, forget], *args)
    labels = obs.y_pool[forget]
    entry = _entry(spec, data, positives, negatives, labels, len(keys), len(shadow_keys), target, "ulira",
                   version=ulira.VERSION, shared_models=False, shared_examples=True,
                   negative_labels=labels)  # both sides are forget points: each class plays the same game alone
    entry["n_reference_models"] = len(reference)
    entry["references_per_example"] = {"unlearned": int(args[1].sum(axis=0).min()),
                                       "never_trained": int(args[2].sum(axis=0).min())}
    return entry


MIA_HEADLINE = ("auc", "tpr_at_fpr", "balanced_accuracy", "advantage", "epsilon_lower_bound", "mia_efficacy",
                "n_members", "n_forget", "n_nonmembers", "n_target_models", "n_shadow_models")


@PROBES.register("mia")
class MembershipInference(SectionProbe):
    """Membership inference: every attack in attacks.run against every target population."""

    name = "mia"

    def enabled(self, spec: Spec) -> bool:
        return bool(spec.attacks.run)

    def section(self, context: ProbeContext) -> dict[str, Any]:
        return mia_results(context.spec, context.data, context.plan, context.store, context.observations)

    def rule_paths(self, spec: Spec) -> set[str]:
        return mia_rule_paths(spec)

    def why_absent(self, spec: Spec, path: tuple[str, ...]) -> str | None:
        return mia_why_absent(spec, path)

    def probe_entries(self, section: dict[str, Any]) -> list[dict[str, Any]]:
        """One probe per attack and target; the full curves stay in the `mia` section."""
        probes = []
        targets = [(f"population:{name}", attacks) for name, attacks in section.get("populations", {}).items()]
        targets += list(section.get("methods", {}).items())
        for target, attacks in targets:
            for attack, summary in attacks.items():
                probes.append({
                    "id": f"mia.{attack}", "version": summary["version"], "method": target,
                    "n_models": summary["n_target_models"], "n_shadow_models": summary["n_shadow_models"],
                    "n_examples": {"members": summary.get("n_members", summary.get("n_forget")),
                                   "nonmembers": summary["n_nonmembers"]},
                    "stats": {k: summary[k] for k in MIA_HEADLINE if k in summary},
                })
        return probes
