from dataclasses import dataclass

import pytest
import torch
from torch.nn import functional as F

from audit.core.registry import UNLEARNERS
from audit.core.contracts import Tags, Unlearner
from unlearners.checks import _problem, _task, check_unlearner
from unlearners.finetune import FineTune
from unlearners.random_label import random_label_loss
from unlearners.sgd import SGDUnlearner


@pytest.mark.parametrize("name", UNLEARNERS.names())
def test_every_registered_unlearner_passes_the_conformance_checks(name):
    report = check_unlearner(name)
    assert report.ok, str(report)


class MutatesItsInput(Unlearner):
    def unlearn(self, model, task):
        with torch.no_grad():
            model.head.bias.add_(1.0)
        return model


@dataclass
class UsesGlobalRandomness(SGDUnlearner):
    def unlearn(self, model, task):
        model = self.copy(model)
        with torch.no_grad():
            model.head.bias.add_(torch.randn(model.head.bias.shape))
        return model


class ChangesNothing(Unlearner):
    def unlearn(self, model, task):
        return self.copy(model)


class PeeksAtRetainData(Unlearner):
    tags = Tags(needs_retain=False)

    def unlearn(self, model, task):
        model = self.copy(model)
        FineTune(epochs=1).unlearn(model, task)
        return model


@pytest.mark.parametrize(
    ("cls", "failure"),
    [
        (MutatesItsInput, "leaves the input model untouched"),
        (UsesGlobalRandomness, "same seed gives the same weights"),
        (ChangesNothing, "changes the weights"),
        (PeeksAtRetainData, "unlearns on the CPU with the data its tags ask for"),
    ],
)
def test_the_checks_catch_broken_unlearners(cls, failure):
    report = check_unlearner(cls)
    assert not report.ok
    assert any(f.startswith(failure) for f in report.failed), str(report)


def forget_loss(model, task):
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(task.forget.x), task.forget.y).item()


def test_gradient_ascent_raises_the_forget_loss_without_retain_data():
    spec, data, original = _problem()
    unlearner = UNLEARNERS.get("grad_ascent")(epochs=2, lr=0.05)
    task = _task(unlearner, spec, data, 0)
    assert task.retain is None
    assert forget_loss(unlearner.unlearn(original, task), task) > 1.25 * forget_loss(original, task)


def test_random_labels_are_uniform_over_all_classes_and_drawn_afresh_per_batch():
    logits = torch.randn(5000, 10, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(5000, dtype=torch.long)
    loss = random_label_loss(10, torch.Generator().manual_seed(0))
    replay = torch.Generator().manual_seed(0)
    first = torch.randint(10, (5000,), generator=replay)
    second = torch.randint(10, (5000,), generator=replay)
    assert loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, first).item())
    assert loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, second).item())
    assert not torch.equal(first, second)
    assert torch.all((torch.bincount(first, minlength=10) / 5000 - 0.1).abs() < 0.02)


def test_retrain_ignores_the_original_weights():
    spec, data, original = _problem()
    retrain = UNLEARNERS.get("retrain")()
    damaged = retrain.copy(original)
    with torch.no_grad():
        for p in damaged.parameters():
            p.mul_(-3.0)
    a = retrain.unlearn(original, _task(retrain, spec, data, 0))
    b = retrain.unlearn(damaged, _task(retrain, spec, data, 0))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


class WantsTestData(Unlearner):
    tags = Tags(needs_test=True)

    def unlearn(self, model, task):
        return self.copy(model)


def test_tasks_carry_only_the_data_a_method_asks_for(tmp_path):
    from audit.data.datasets import prepare_data
    from audit.tasks.classification.jobs import make_task
    from helpers import small_spec

    data = prepare_data(small_spec(tmp_path, forget={"kind": "class", "fraction": None, "classes": [3]}))
    cpu = torch.device("cpu")
    bare = make_task(UNLEARNERS.get("identity")(), data, None, None, torch.Generator(), cpu)
    assert bare.retain is None and bare.test is None and len(bare.forget) == len(data.forget)
    full = make_task(WantsTestData(), data, None, None, torch.Generator(), cpu)
    assert len(full.retain) == len(data.retain)
    assert 0 < len(full.test) < len(data.test) and 3 not in full.test.y.tolist()
    assert full.forget_classes == (3,)
