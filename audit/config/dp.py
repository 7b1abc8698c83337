"""[train.dp]: differentially private training (opacus), and the audit of its ε.

One noise level (`noise_multiplier = 1.0`) or a privacy target (`target_epsilon = 8.0`) trains
every model of the audit (originals, retrains, shadows) with DP. A list of noise levels
(`noise_multiplier = [0.5, 1.0, 2.0]`) leaves the audit's models as they are and trains, beside
them, a population of DP originals per level, so that the audited ε can be set against the
accountant's across levels. Either way the `dp` probe audits each population: the ε lower bounds
of membership inference against the accountant's ε, and a one-run audit with `canaries`
(Steinke, Nasr and Jagielski 2023) on models trained with a random half of them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from audit.config.fields import Section
from audit.core.errors import SalunInputError

TRAINING_FIELDS = ("max_grad_norm", "delta", "accountant", "poisson")  # with the noise: what a DP job trains with


class DpSection(Section):
    noise_multiplier: float | tuple[float, ...] | None = None  # σ: noise std / max_grad_norm (range checked below)
    target_epsilon: float | None = Field(default=None, gt=0, le=1000)  # or: the σ that spends this ε in train.epochs
    max_grad_norm: float = Field(default=1.0, gt=0, le=1e6)  # per-example gradients clipped to this L2 norm
    delta: float = Field(default=1e-5, gt=0, lt=1)
    poisson: bool = True        # Poisson-sampled batches, as the accountant assumes
    accountant: Literal["rdp", "prv"] = "rdp"
    canaries: int = Field(default=256, ge=0, le=1_000_000)  # one-run audit: 0 for none; an even count
    population: int | None = Field(default=None, ge=2, le=10_000)  # models per level and canary population;
    # None: audit.seeds

    @model_validator(mode="after")
    def _one_noise(self) -> "DpSection":
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise SalunInputError("train.dp: give exactly one of train.dp.noise_multiplier and train.dp.target_epsilon")
        levels = self.noise_multiplier if isinstance(self.noise_multiplier, tuple) else (self.noise_multiplier,)
        if self.noise_multiplier is not None:
            if not levels:
                raise SalunInputError("train.dp.noise_multiplier: an empty list; give one level or several")
            if any(not 0 < level <= 1000 for level in levels):
                raise SalunInputError(f"train.dp.noise_multiplier: every level must be in (0, 1000], got {list(levels)}")
            if len(set(levels)) < len(levels):
                raise SalunInputError(f"train.dp.noise_multiplier: a level is listed twice in {list(levels)}")
        if self.canaries % 2:
            raise SalunInputError(f"train.dp.canaries: {self.canaries} is odd; each model trains on exactly half of them")
        if self.canaries == 2:
            raise SalunInputError("train.dp.canaries: 2 canaries cannot certify anything; give 0 or at least 4")
        return self

    @property
    def sweep(self) -> tuple[float, ...]:
        """The noise levels of the DP populations trained beside the audit's models (none: the audit's own are DP)."""
        return self.noise_multiplier if isinstance(self.noise_multiplier, tuple) else ()

    def training(self, noise_multiplier: float | None = None) -> dict[str, Any]:
        """What one DP model trains with (a job's `dp` parameter): the audit's own setting, or a sweep level."""
        common = {name: getattr(self, name) for name in TRAINING_FIELDS}
        if noise_multiplier is not None:
            return {**common, "noise_multiplier": noise_multiplier}
        if self.target_epsilon is not None:
            return {**common, "target_epsilon": self.target_epsilon}
        return {**common, "noise_multiplier": self.noise_multiplier}

    @property
    def audit_wide(self) -> dict[str, Any] | None:
        """The DP setting of the audit's own models; None when they train as usual beside a sweep."""
        return None if self.sweep else self.training()
