"""The generation unlearners pass the same conformance checks as the classifiers' methods."""

from dataclasses import dataclass

import pytest
import torch

from audit.core.registry import GENERATION_UNLEARNERS
from audit.core.contracts import Tags, Unlearner
from unlearners.checks import check_unlearner
from unlearners.generation import DiMUM

NAMES = ("identity", "retrain", "finetune", "salun", "dimum")


def test_the_generation_methods_are_registered_apart_from_the_classifiers():
    assert set(NAMES) <= set(GENERATION_UNLEARNERS.names())
    assert all(GENERATION_UNLEARNERS.get(name).tags.modality == "generation" for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_generation_method_passes_the_conformance_checks(name):
    report = check_unlearner(GENERATION_UNLEARNERS.get(name))
    assert report.ok, str(report)


@dataclass
class Scribbler(Unlearner):
    """Writes into the generator it was given."""

    tags = Tags(modality="generation")

    def unlearn(self, model, task):
        with torch.no_grad():
            next(model.parameters()).add_(1.0)
        return model


def test_a_generation_method_that_changes_its_input_fails():
    report = check_unlearner(Scribbler)
    assert not report.ok and "leaves the input model untouched" in str(report)


def test_dimum_takes_another_class_or_a_pattern():
    assert DiMUM(alternative="class:1").alternative == "class:1"
    with pytest.raises(ValueError, match='alternative must be "pattern" or "class:<k>"'):
        DiMUM(alternative="cats")
