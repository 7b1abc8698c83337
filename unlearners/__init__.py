"""Unlearning methods, one module each; importing this package registers the built-ins."""

from unlearners import finetune, grad_ascent, identity, random_label, retrain  # noqa: F401
from unlearners.base import Tags, Task, Unlearner

__all__ = ["Tags", "Task", "Unlearner"]
