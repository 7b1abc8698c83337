"""ManiF-SMC: the neighbour search, the representation loss, the control point and the margins."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from audit.core.errors import SalunInputError
from audit.core.registry import UNLEARNERS
from types import SimpleNamespace

from audit.core.contracts import Subset
from audit.nn.models import Classifier
from audit.core.contracts import Task
from unlearners.checks import _problem, _task
from unlearners.manif_smc import _params, bezier, nearest_neighbours, normalised_features, train_control_point


def test_the_chunked_neighbour_search_finds_the_brute_force_neighbours():
    g = torch.Generator().manual_seed(0)
    queries = F.normalize(torch.randn(23, 6, generator=g), dim=1)
    keys = F.normalize(torch.randn(101, 6, generator=g), dim=1)
    index, similarity = nearest_neighbours(queries, keys, 5, chunk=7)
    dense = queries @ keys.T
    expected = torch.topk(dense, 5, dim=1)
    assert torch.equal(index, expected.indices)
    assert torch.allclose(similarity, expected.values)
    with pytest.raises(ValueError, match="k = 102"):
        nearest_neighbours(queries, keys, 102)


class Toy(Classifier):
    """2-d inputs, 2-d features: distances in representation space can be read off."""

    def __init__(self, generator):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
        self.head = nn.Linear(2, 2)
        for p in self.parameters():
            with torch.no_grad():
                p.copy_(0.5 * torch.randn(p.shape, generator=generator))

    def features(self, x):
        return self.body(x)


def toy_problem():
    """Retained cluster A around (1, 0), cluster B around (−1, 0); the erased point sits at the
    edge of A, so its neighbours are A's points and their centroid is A's direction."""
    a = torch.tensor([[1.0, 0.0], [1.0, 0.1], [1.0, -0.1], [1.1, 0.05], [0.9, -0.05]])
    retain = Subset(torch.cat([a, -a]), torch.tensor([0] * 5 + [1] * 5))
    forget = Subset(torch.tensor([[1.0, 0.45]]), torch.tensor([0]))
    model = Toy(torch.Generator().manual_seed(3))
    task = Task(forget=forget, retain=retain, test=None, num_classes=2, device=torch.device("cpu"),
                generator=torch.Generator().manual_seed(0), recipe=SimpleNamespace(batch_size=8),
                build_model=Toy)
    return model, task


def test_the_loss_pushes_erased_points_from_their_neighbours_centroid_and_keeps_the_neighbours():
    model, task = toy_problem()
    unlearner = UNLEARNERS.get("manif_smc")(margin="fixed", alpha=0.3, lam=1.0, k=5, epochs=300, lr=0.02,
                                          weight_decay=0.0)
    centroid = normalised_features(model, task.retain.x[:5]).mean(0)

    def distances(m):
        """MSE to A's centroid of the erased point's z, and of each neighbour's."""
        erased = ((normalised_features(m, task.forget.x) - centroid) ** 2).mean().item()
        return erased, ((normalised_features(m, task.retain.x[:5]) - centroid) ** 2).mean(1)

    erased_before, neighbours_before = distances(model)
    erased_after, neighbours_after = distances(unlearner.unlearn(model, task))
    assert erased_before < 0.01 and neighbours_before.max() < 0.01
    assert erased_after > 0.8                                    # the erased point leaves the centroid
    assert neighbours_after.mean() < 0.25 * erased_after        # the neighbours, pulled in, stay much nearer
    assert (erased_after - neighbours_after).min() >= 0.3       # each by at least the margin α


def test_the_control_point_is_trained_on_the_neighbours():
    spec, data, original = _problem()
    moved = _params(original)
    g = torch.Generator().manual_seed(1)
    moved = {k: v + 0.3 * torch.randn(v.shape, generator=g) for k, v in moved.items()}  # an unlearned end point
    end = _params(original)
    control = {k: (moved[k] + end[k]) / 2 for k in end}
    x = data.retain_set.x[:64]
    targets = normalised_features(original, x)
    losses = train_control_point(original, moved, end, control, x, targets, 60, 0.01, 32, torch.Generator())
    assert len(losses) == 60
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    assert not all(torch.equal(control[k], (moved[k] + end[k]) / 2) for k in end)
    assert all(torch.equal(v, _params(original)[k]) for k, v in end.items())  # the end points stay frozen


def test_the_bezier_path_runs_from_the_unlearned_weights_to_the_original():
    a, w, b = ({"p": torch.tensor([v])} for v in (1.0, 5.0, 3.0))
    assert bezier(a, w, b, 0.0)["p"].item() == 1.0 and bezier(a, w, b, 1.0)["p"].item() == 3.0
    assert bezier(a, w, b, 0.5)["p"].item() == pytest.approx(0.25 * 1 + 0.5 * 5 + 0.25 * 3)


def test_the_margins_of_smc_and_fixed_differ_and_smc_moves_with_the_model():
    spec, data, original = _problem()
    margins = {}
    for margin in ("smc", "smc_random", "fixed"):
        unlearner = UNLEARNERS.get("manif_smc")(margin=margin, alpha=0.1, epochs=3)
        unlearner.unlearn(original, _task(unlearner, spec, data, 0))
        margins[margin] = unlearner.margins
        if margin == "smc":
            assert unlearner.control_losses and len(unlearner.control_losses) == 3 * unlearner.smc_steps
    assert set(margins["fixed"]) == {0.1}
    assert len(set(margins["smc"])) > 1 and margins["smc"] != margins["smc_random"]


def test_the_label_term_is_off_by_default_and_changes_the_result_when_on():
    spec, data, original = _problem()
    free = UNLEARNERS.get("manif_smc")(epochs=2)
    labelled = UNLEARNERS.get("manif_smc")(epochs=2, labels=True)
    a = free.unlearn(original, _task(free, spec, data, 0))
    b = labelled.unlearn(original, _task(labelled, spec, data, 0))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_model_without_penultimate_features_gets_a_clear_error():
    spec, data, original = _problem()

    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

        def forward(self, x):
            return self.net(x)

    unlearner = UNLEARNERS.get("manif_smc")()
    with pytest.raises(SalunInputError, match="has no features"):
        unlearner.unlearn(Plain(), _task(unlearner, spec, data, 0))


@pytest.mark.parametrize("bad, message", [({"margin": "wide"}, "margin must be one of"), ({"t": 1.5}, "t must lie")])
def test_bad_hyperparameters_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        UNLEARNERS.get("manif_smc")(**bad)


def test_the_spec_names_a_bad_margin_before_anything_trains():
    from audit.config.spec import spec_from_dict

    with pytest.raises(SalunInputError, match="unlearners.manif_fixed: margin must be one of"):
        spec_from_dict({"unlearners": {"manif_fixed": {"method": "manif_smc", "margin": "wide"}}})


@pytest.mark.parametrize("margin", ["smc_random", "fixed"])
def test_the_other_margins_pass_the_conformance_checks(margin):
    from unlearners.checks import check_unlearner

    report = check_unlearner(UNLEARNERS.get("manif_smc")(margin=margin))
    assert report.ok, str(report)


@pytest.mark.parametrize("arch, options, shape", [("cnn", {"width": 4}, (1, 8, 8)),
                                                  ("resnet18", {"width": 4}, (3, 32, 32))])
def test_every_built_in_architecture_works_including_batch_norm(arch, options, shape):
    from audit.nn.models import build_model

    g = torch.Generator().manual_seed(0)
    model = build_model(arch, options, shape, 3, g, torch.device("cpu"))
    data = Subset(torch.randn((40, *shape), generator=g), torch.arange(40) % 3)
    task = Task(forget=Subset(data.x[:8], data.y[:8]), retain=Subset(data.x[8:], data.y[8:]), test=None,
                num_classes=3, device=torch.device("cpu"), generator=torch.Generator().manual_seed(1),
                recipe=SimpleNamespace(batch_size=8), build_model=lambda gen: build_model(arch, options, shape, 3, gen,
                                                                                     torch.device("cpu")))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    unlearned = UNLEARNERS.get("manif_smc")(epochs=1, smc_steps=2).unlearn(model, task)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the input is untouched
    assert any(not torch.equal(before[k], v) for k, v in unlearned.state_dict().items())
