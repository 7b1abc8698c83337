"""What a plugin imports from salun: the contracts, the registries, the attack and probe
protocols, the hyperparameter types and the errors. A plugin that imports only from here keeps
working when salun reorganises its modules.

Register a plugin with a registry's decorator (`@UNLEARNERS.register("name")`) in code salun
imports, or, from a separate distribution, through the entry-point group of that registry
(`salun.unlearners`, `salun.generation_unlearners`, `salun.attacks`, `salun.datasets`,
`salun.models`, `salun.probes`) in its pyproject.toml.
"""

from audit.core.contracts import Subset, Tags, Task, Unlearner
from audit.core.errors import Diverged, SalunInputError
from audit.core.params import (BatchSize, Count, Epochs, LearningRate, Momentum, Probability, Steps, Temperature,
                               Weight, WeightDecay)
from audit.core.probes import MembershipAttack, Probe, ProbeContext, SectionProbe, ShadowLogits
from audit.core.registry import ATTACKS, DATASETS, GENERATION_UNLEARNERS, MODELS, PROBES, UNLEARNERS
from audit.data.datasets import Source
from audit.nn.models import Classifier
from audit.nn.training import make_optimizer
from unlearners.sgd import SGDUnlearner

__all__ = [
    "ATTACKS", "DATASETS", "GENERATION_UNLEARNERS", "MODELS", "PROBES", "UNLEARNERS",
    "BatchSize", "Classifier", "Count", "Diverged", "Epochs", "LearningRate", "MembershipAttack", "Momentum",
    "Probability", "Probe", "ProbeContext", "SGDUnlearner", "SectionProbe", "SalunInputError", "ShadowLogits", "Source", "Steps",
    "Subset", "Tags", "Task", "Temperature", "Unlearner", "Weight", "WeightDecay", "make_optimizer",
]
