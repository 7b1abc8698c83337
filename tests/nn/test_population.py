"""Vectorised training against `fit`: each member gets the weights per-model training gives it."""

import pytest
import torch

from audit.core.contracts import Subset
from audit.core.errors import Diverged
from audit.core.seeds import torch_generator
from audit.data.datasets import prepare_data
from audit.nn.augment import make_augmentation
from audit.nn.models import build_model
from audit.nn.population import train_population
from audit.nn.training import fit
from helpers import small_spec

SEEDS = (0, 1)
# batched kernels round differently from single ones: 4e-8 at most measured over these runs with
# SGD; Adam divides by the root of each weight's running squared gradient, so a gradient near zero,
# rounded differently, moves its weight further (1.3e-6 measured). A wrong batch, augmentation draw
# or optimiser state moves weights by 1e-3 or more.
TOLERANCE = {"sgd": 1e-6, "adam": 1e-5}
OPTIONS = {"mlp": {"hidden": (32,)}, "cnn": {"width": 4}, "resnet18": {"width": 4}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return prepare_data(small_spec(tmp_path_factory.mktemp("population")))


@pytest.fixture(scope="module")
def train_set(data):
    return head(data.pool, 300)  # five steps a pass, the last one short


def recipe(tmp_path, **train):
    return small_spec(tmp_path, train={"epochs": 2, **train}).train


def models(data, arch, seeds=SEEDS):
    return [build_model(arch, OPTIONS[arch], data.input_shape, data.num_classes, torch_generator("init", seed))
            for seed in seeds]


def orders(seeds=SEEDS):
    return [torch_generator("order", seed) for seed in seeds]


def largest_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((x.double() - y.double()).abs().max().item() for x, y in zip(a.state_dict().values(),
                                                                           b.state_dict().values()))


def head(subset: Subset, n: int, start: int = 0) -> Subset:
    return Subset(subset.x[start:start + n], subset.y[start:start + n])


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("optimizer, augmentation", [("sgd", "none"), ("adam", "none"), ("sgd", "crop_flip"),
                                                     ("adam", "crop_flip")])
def test_each_member_gets_the_weights_fit_gives_it(data, train_set, tmp_path, arch, optimizer, augmentation):
    train = recipe(tmp_path, optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1e-3, augmentation=augmentation)
    augment = make_augmentation(augmentation, data.channel_mean, data.channel_std)
    together = models(data, arch)
    logs = train_population(together, [train_set] * len(SEEDS), train, orders(), augment)
    for seed, model, log in zip(SEEDS, together, logs):
        alone = models(data, arch, [seed])[0]
        expected = fit(alone, train_set, train, torch_generator("order", seed), augment)
        assert largest_difference(model, alone) < TOLERANCE[optimizer]
        assert log.losses == pytest.approx(expected.losses, rel=1e-5)
        assert log.losses[-1] < log.losses[0]
    assert largest_difference(together[0], together[1]) > 1e-2  # each trained from its own init and order


def test_batchnorm_running_statistics_are_each_members_own(data, tmp_path):
    train = recipe(tmp_path, epochs=1)
    # one step: within a few more, a pre-activation within rounding of zero takes the other side of a
    # ReLU and the members drift from fit by far more than rounding (4.8e-2 after one epoch, measured)
    subset = head(data.pool, 64)
    together = models(data, "resnet18")
    train_population(together, [subset] * len(SEEDS), train, orders())
    for seed, model in zip(SEEDS, together):
        alone = models(data, "resnet18", [seed])[0]
        fit(alone, subset, train, torch_generator("order", seed))
        assert largest_difference(model, alone) < 1e-5
        assert model.stem[1].num_batches_tracked.item() == 1
        assert not torch.allclose(model.stem[1].running_mean, torch.zeros(4))
    assert not torch.allclose(together[0].stem[1].running_mean, together[1].stem[1].running_mean)


def test_two_runs_give_identical_weights(data, train_set, tmp_path):
    train = recipe(tmp_path, optimizer="adam", lr=1e-3, augmentation="crop_flip")
    augment = make_augmentation("crop_flip", data.channel_mean, data.channel_std)
    first, second = models(data, "cnn"), models(data, "cnn")
    for run in (first, second):
        train_population(run, [train_set] * len(SEEDS), train, orders(), augment)
    assert all(largest_difference(a, b) == 0 for a, b in zip(first, second))


def test_members_on_different_data_train_as_they_would_alone(data, tmp_path):
    train = recipe(tmp_path, optimizer="adam", lr=1e-3)
    sets = [head(data.pool, 300, 300 * i) for i in range(len(SEEDS))]
    together = models(data, "mlp")
    train_population(together, sets, train, orders())
    for i, (seed, model) in enumerate(zip(SEEDS, together)):
        alone = models(data, "mlp", [seed])[0]
        train_population([alone], [sets[i]], train, orders([seed]))
        assert largest_difference(model, alone) < 1e-6


def test_a_diverging_member_is_reported_and_the_others_train_on(data, train_set, tmp_path):
    train = recipe(tmp_path)
    blown = Subset(train_set.x * 1e30, train_set.y)
    seeds = (0, 1, 2)
    together = models(data, "mlp", seeds)
    logs = train_population(together, [train_set, blown, train_set], train, orders(seeds))
    assert isinstance(logs[1], Diverged) and "loss became" in str(logs[1])
    for i in (0, 2):
        alone = models(data, "mlp", [seeds[i]])[0]
        fit(alone, train_set, train, torch_generator("order", seeds[i]))
        assert largest_difference(together[i], alone) < TOLERANCE["sgd"]


def test_members_must_train_on_equally_many_examples(data, train_set, tmp_path):
    with pytest.raises(ValueError, match="equally many"):
        train_population(models(data, "mlp"), [train_set, head(train_set, 100)], recipe(tmp_path), orders())
