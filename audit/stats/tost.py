"""TOST equivalence of two means within a margin (Welch and percentile bootstrap), and the
decision an audit draws from both: equivalent, different, or undecided with the margin the
tests could have shown. Absence of a significant difference is not equivalence."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

_POWER = 0.8  # power at which `detectable_margin` is quoted


def _too_few(nu: int, nr: int, margin: float, alpha: float) -> dict:
    return {
        "difference": None,
        "ci": None,
        "p_lower": None,
        "p_upper": None,
        "p": None,
        "equivalent": False,
        "df": None,
        "margin": float(margin),
        "alpha": float(alpha),
        "n_u": nu,
        "n_r": nr,
        "detectable_margin": None,
        "reason": "too few models",
    }


def _check_tost(u, r, margin: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    u = np.asarray(u, dtype=np.float64).ravel()
    r = np.asarray(r, dtype=np.float64).ravel()
    if not margin > 0:
        raise ValueError("the equivalence margin must be positive")
    if not 0 < alpha < 0.5:
        raise ValueError("alpha must lie in (0, 0.5)")
    return u, r


def tost_welch(u, r, margin: float, alpha: float = 0.05) -> dict:
    """Two one-sided Welch t-tests for equivalence of two means within ±margin.

    H0: |μ_u − μ_r| >= m against H1: |μ_u − μ_r| < m. With d = mean_u − mean_r,
    SE = sqrt(s_u²/n_u + s_r²/n_r) and Welch-Satterthwaite df:
      p_lower = P[T_df >= (d + m)/SE]   (H0: μ_u − μ_r <= −m)
      p_upper = P[T_df <= (d − m)/SE]   (H0: μ_u − μ_r >= +m)
    p = max(p_lower, p_upper); equivalent iff p < alpha, i.e. iff the 1 − 2α interval
    d ± t_{1−α,df}·SE lies inside (−m, m). Absence of a significant difference is not
    equivalence: noisy or small samples give equivalent False.

    detectable_margin = (t_{1−α,df} + t_{1−β/2,df})·SE with β = 0.2: the smallest margin at
    which, if the true difference is 0 and the variances are as observed, the test declares
    equivalence with about 80 % power (the usual normal-approximation TOST sample-size formula
    with t quantiles). A margin below it cannot be expected to pass at these sample sizes.

    Fewer than two values on a side: equivalent False, reason "too few models".
    """
    u, r = _check_tost(u, r, margin, alpha)
    nu, nr = len(u), len(r)
    if nu < 2 or nr < 2:
        return _too_few(nu, nr, margin, alpha)
    var_u, var_r = u.var(ddof=1) / nu, r.var(ddof=1) / nr
    se = math.sqrt(var_u + var_r)
    diff = float(u.mean() - r.mean())
    if se > 0:
        df = (var_u + var_r) ** 2 / (var_u**2 / (nu - 1) + var_r**2 / (nr - 1))
        p_lower = float(stats.t.sf((diff + margin) / se, df))
        p_upper = float(stats.t.cdf((diff - margin) / se, df))
    else:  # both sides constant: the difference is known exactly
        df = float(nu + nr - 2)
        p_lower = 0.0 if diff > -margin else 1.0
        p_upper = 0.0 if diff < margin else 1.0
    t_crit = float(stats.t.ppf(1 - alpha, df))
    p = max(p_lower, p_upper)
    return {
        "difference": diff,
        "ci": [diff - t_crit * se, diff + t_crit * se],
        "p_lower": p_lower,
        "p_upper": p_upper,
        "p": p,
        "equivalent": bool(p < alpha),
        "df": float(df),
        "margin": float(margin),
        "alpha": float(alpha),
        "n_u": nu,
        "n_r": nr,
        "detectable_margin": float((t_crit + stats.t.ppf(1 - (1 - _POWER) / 2, df)) * se),
    }


def tost_bootstrap(
    u, r, margin: float, rng: np.random.Generator, alpha: float = 0.05, resamples: int = 2000
) -> dict:
    """Equivalence of two means within ±margin by a percentile bootstrap.

    Each side is resampled with replacement on its own, `resamples` times; d* = mean_u* − mean_r*.
    ci = the α and 1 − α percentiles of d* (a 1 − 2α interval); equivalent iff ci lies inside
    (−m, m). p_lower = fraction of d* <= −m, p_upper = fraction of d* >= m, p = their max (the
    bootstrap counterparts of the two one-sided p-values). df is None. detectable_margin =
    (z_{1−α} + z_{1−β/2})·SE* with β = 0.2 and SE* the standard deviation of d*: the normal
    version of the Welch formula in `tost_welch`.

    Fewer than two values on a side: equivalent False, reason "too few models".
    """
    u, r = _check_tost(u, r, margin, alpha)
    nu, nr = len(u), len(r)
    if nu < 2 or nr < 2:
        return _too_few(nu, nr, margin, alpha)
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    boot = (
        u[rng.integers(0, nu, size=(resamples, nu))].mean(axis=1)
        - r[rng.integers(0, nr, size=(resamples, nr))].mean(axis=1)
    )
    low, high = (float(v) for v in np.quantile(boot, [alpha, 1 - alpha]))
    p_lower = float(np.mean(boot <= -margin))
    p_upper = float(np.mean(boot >= margin))
    se = float(boot.std(ddof=1)) if resamples > 1 else 0.0
    z = stats.norm.ppf([1 - alpha, 1 - (1 - _POWER) / 2])
    return {
        "difference": float(u.mean() - r.mean()),
        "ci": [low, high],
        "p_lower": p_lower,
        "p_upper": p_upper,
        "p": max(p_lower, p_upper),
        "equivalent": bool(-margin < low and high < margin),
        "df": None,
        "margin": float(margin),
        "alpha": float(alpha),
        "n_u": nu,
        "n_r": nr,
        "detectable_margin": float(z.sum() * se),
        "resamples": int(resamples),
    }


def tost_decision(tests: dict[str, dict[str, Any]], margin: float, alpha: float) -> dict[str, Any]:
    """equivalent when Welch and bootstrap TOST both show |μ_u − μ_r| < margin; different when
    both 1 − 2α intervals lie wholly outside ±margin (equivalence rejected at level α);
    otherwise undecided, with the margin the tests could have shown."""
    welch = tests["welch"]
    if welch["ci"] is None:
        return {"decision": "undecided", "why": f"too few models ({welch['n_u']} and {welch['n_r']})"}
    level = f"{100 * (1 - 2 * alpha):g} %"
    interval = ", ".join(f"{name} [{t['ci'][0]:.4g}, {t['ci'][1]:.4g}]" for name, t in tests.items())
    if all(t["equivalent"] for t in tests.values()):
        return {"decision": "equivalent", "why": f"{level} intervals {interval} lie inside ±{margin:g}"}
    if all(t["ci"][0] >= margin or t["ci"][1] <= -margin for t in tests.values()):
        return {"decision": "different", "why": f"{level} intervals {interval} lie outside ±{margin:g}"}
    detectable = max(t["detectable_margin"] for t in tests.values())
    if detectable > margin:
        power = (f"underpowered: with {welch['n_u']} and {welch['n_r']} models the tests show equivalence "
                 f"(80 % power) only within ±{detectable:.3g}, wider than the margin; add models")
    else:
        power = (f"the difference {welch['difference']:.4g} lies near the margin (the tests resolve "
                 f"±{detectable:.3g}): neither equivalence nor a difference beyond it is shown")
    return {"decision": "undecided", "why": f"{level} intervals {interval} straddle ±{margin:g}; {power}"}
