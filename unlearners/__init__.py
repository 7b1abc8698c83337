"""Unlearning methods, one module each; importing this package registers the built-ins."""

from unlearners import (  # noqa: F401
    boundary_expanding,
    boundary_shrink,
    finetune,
    generation,
    grad_ascent,
    identity,
    influence,
    l1_sparse,
    manif_smc,
    neggrad_plus,
    partial_retrain,
    random_label,
    retrain,
    salun,
    salun_soft,
    scrub,
)
from audit.core.contracts import Tags, Task, Unlearner

__all__ = ["Tags", "Task", "Unlearner"]
