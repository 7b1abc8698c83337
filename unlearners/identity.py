from __future__ import annotations

from torch import nn

from audit.core.registry import UNLEARNERS
from audit.core.contracts import Tags, Task, Unlearner


@UNLEARNERS.register("identity")
class Identity(Unlearner):
    """Control that forgets nothing: returns a copy of the original; an audit must FAIL it."""

    tags = Tags(needs_retain=False, modifies_weights=False)

    def unlearn(self, model: nn.Module, task: Task) -> nn.Module:
        return self.copy(model)
