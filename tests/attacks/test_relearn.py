"""Relearning attacks: the fine-tuning loops, and the attack inside an audit with its controls."""

import copy

import pytest
import torch
from torch import nn

from attacks.relearn import accuracy, checkpoint_steps, relearn_curve, relearn_time
from audit.core.contracts import Subset
from audit.pipeline import run_audit
from audit.config.policy import RELEARN_RULE
from helpers import small_spec


def test_checkpoints_start_at_zero_and_end_at_the_budget():
    assert checkpoint_steps(300, 6) == [0, 50, 100, 150, 200, 250, 300]
    assert checkpoint_steps(3, 5) == [0, 1, 2, 3]


def two_blobs(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 2, 2, generator=g)
    y = (x.flatten(1).sum(1) > 0).long()
    return Subset(x, y)


def linear():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 2))


def test_the_curve_starts_at_the_model_as_given_and_leaves_it_untouched():
    model, data = linear(), two_blobs()
    before = copy.deepcopy(model.state_dict())
    curve = relearn_curve(model, data, data, data, [0, 20, 40], 0.1, 16, torch.Generator().manual_seed(0))
    assert curve["steps"] == [0, 20, 40]
    assert curve["forget_accuracy"][0] == accuracy(model, data)
    assert curve["forget_accuracy"][-1] > curve["forget_accuracy"][0]  # learning the task raises accuracy
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_relearn_time_counts_steps_to_the_target_and_says_when_it_never_gets_there():
    model, data = linear(), two_blobs()
    generator = torch.Generator().manual_seed(0)
    assert relearn_time(model, data, data, accuracy(model, data), 10, 0.1, generator) == 0
    steps = relearn_time(model, data, data, 0.9, 200, 0.5, generator)
    assert steps is not None and 0 < steps <= 200
    assert relearn_time(model, data, data, 1.01, 5, 0.1, generator) is None  # above any accuracy


@pytest.fixture(scope="module")
def relearned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("relearn")
    spec = small_spec(tmp, audit={"seeds": 3}, train={"epochs": 20},
                      forget={"kind": "class", "classes": [3], "fraction": None},
                      relearn={"run": ["retain", "few_shot"], "steps": 60, "checkpoints": 3, "shots": 5,
                               "max_steps": 30, "aux_size": 150},
                      policy={"rules": [RELEARN_RULE, 'relearn.few_shot == "not faster"']},
                      unlearners={"identity": {}, "retrain": {}, "random_label": {"epochs": 5, "lr": 0.005}})
    return run_audit(spec, tmp / "out", show_progress=False)


def test_every_method_gets_curves_against_the_reference_under_the_same_budget(relearned):
    relearn = relearned["relearn"]
    assert relearn["steps"] == [0, 20, 40, 60]
    assert set(relearn["methods"]) == {"identity", "retrain", "random_label"}
    for label, entry in relearn["methods"].items():
        assert entry["n_models"] == 3 and len(entry["difference"]) == 4
        assert entry["few_shot"]["unlearned"]["n"] == 3
    assert relearned["policy"]["rules"] == [RELEARN_RULE, 'relearn.few_shot == "not faster"']


def test_identity_has_nothing_to_recover_and_a_retrain_recovers_nothing(relearned):
    methods = relearned["relearn"]["methods"]
    identity, retrain = methods["identity"], methods["retrain"]
    assert identity["unlearned"][0]["mean"] > 0.9  # it never forgot class 3
    assert abs(identity["gain"]["value"]) < 0.1  # so fine-tuning has nothing to bring back
    assert retrain["unlearned"][0]["mean"] == 0.0 and abs(retrain["recovery"]["value"]) < 0.05
    rows = {(row["method"], row["rule"]): row for row in relearned["verdicts"]}
    assert rows[("identity", RELEARN_RULE)]["verdict"] == "FAIL"
    assert rows[("retrain", RELEARN_RULE)]["verdict"] == "PASS"
    assert methods["identity"]["few_shot"]["unlearned"]["mean"] == 0  # already there: no step needed
    assert rows[("identity", 'relearn.few_shot == "not faster"')]["verdict"] == "FAIL"
    assert rows[("retrain", 'relearn.few_shot == "not faster"')]["verdict"] == "PASS"


def test_the_attacker_may_bring_its_own_dataset(tmp_path):
    import dataclasses

    from audit.data.datasets import auxiliary_set, load_source, prepare_data
    from audit.core.errors import SalunInputError
    from audit.tasks.classification.jobs import relearn_sets

    spec = small_spec(tmp_path, relearn={"run": ["retain"], "aux_dataset": "digits", "aux_size": 50})
    data = prepare_data(spec)
    aux, shots, rest = relearn_sets(spec, data, spec.relearn.model_dump())
    own = auxiliary_set("digits", None, data, "relearn.aux_dataset")
    assert len(own) == len(load_source("digits", None).y) and len(aux) == 50 and len(shots) == 10
    assert all((own.x == row).flatten(1).all(1).any() for row in aux.x)  # every row is one of its images
    default = relearn_sets(spec, data, {**spec.relearn.model_dump(), "aux_dataset": None})[0]
    assert not set(map(tuple, default.x.flatten(1).tolist())) >= set(map(tuple, aux.x.flatten(1).tolist()))
    with pytest.raises(SalunInputError, match="relearn.aux_dataset: 'digits' has images of shape"):
        auxiliary_set("digits", None, dataclasses.replace(data, num_classes=5), "relearn.aux_dataset")


class MeanJudge(nn.Module):
    """Class 0 for bright images, class 1 for dark ones."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.head.bias.zero_()

    def features(self, x):
        return x.flatten(1).mean(1, keepdim=True)

    def forward(self, x):
        return self.head(self.features(x))


def blobs(label, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    sign = 1.0 if label == 0 else -1.0
    return Subset(sign + 0.1 * torch.randn(n, 1, 4, 4, generator=g), torch.full((n,), label))


def test_dimra_measures_the_forgotten_class_coming_back_only_when_the_data_brings_it():
    from attacks.relearn import generation_relearn_curve
    from audit.nn.ddpm import Denoiser, NoiseSchedule, train_denoiser

    schedule = NoiseSchedule(steps=100)
    generator = Denoiser((1, 4, 4), 2, width=32, generator=torch.Generator().manual_seed(0))
    train_denoiser(generator, blobs(1), schedule, 100, 3e-3, 32, torch.Generator().manual_seed(0))  # never saw 0
    before = copy.deepcopy(generator.state_dict())

    def attack(aux, lr):
        return generation_relearn_curve(generator, schedule, aux, MeanJudge(), 0, [0, 150], lr, 32, 64, 0.0,
                                        torch.Generator().manual_seed(1), clip=(-1.5, 1.5))[0]

    unchanged, images = generation_relearn_curve(generator, schedule, blobs(1, seed=2), MeanJudge(), 0, [0, 150],
                                                 0.0, 32, 64, 0.0, torch.Generator().manual_seed(1), clip=(-1.5, 1.5))
    assert images.shape == (64, 1, 4, 4)  # the last checkpoint's samples, for the report
    assert unchanged["steps"] == [0, 150] and unchanged["forgotten_rate"][0] < 0.2
    assert unchanged["forgotten_rate"][1] < 0.2  # no step size: nothing moves
    assert attack(blobs(1, seed=2), 3e-3)["forgotten_rate"][1] < 0.2  # forget-free data brings nothing back
    assert attack(blobs(0, seed=2), 3e-3)["forgotten_rate"][1] > 0.8  # data of the class does
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
