import pytest
import torch

from audit.data.datasets import prepare_data
from audit.core.errors import Diverged
from audit.tasks.classification.jobs import new_model
from audit.core.seeds import torch_generator
from audit.nn.training import fit, shuffled_batches
from helpers import small_spec


def test_batches_cover_every_index_once_in_an_order_fixed_by_the_generator():
    first = torch.cat(list(shuffled_batches(103, 10, torch_generator("o"))))
    again = torch.cat(list(shuffled_batches(103, 10, torch_generator("o"))))
    assert sorted(first.tolist()) == list(range(103))
    assert torch.equal(first, again)
    assert not torch.equal(first, torch.arange(103))


def test_fit_learns_digits_and_is_repeatable(tmp_path):
    spec = small_spec(tmp_path)
    data = prepare_data(spec)
    device = torch.device("cpu")
    runs = []
    for _ in range(2):
        model = new_model(spec, data, torch_generator("init"), device)
        log = fit(model, data.pool, spec.train, torch_generator("order"))
        runs.append(model)
    assert log.losses[-1] < 0.2 * log.losses[0]
    model.eval()
    accuracy = (model(data.test.x).argmax(1) == data.test.y).float().mean()
    assert accuracy > 0.9
    assert all(torch.equal(a, b) for a, b in zip(runs[0].state_dict().values(), runs[1].state_dict().values()))


def test_a_diverging_recipe_raises_diverged(tmp_path):
    spec = small_spec(tmp_path, train={"momentum": 0.0, "epochs": 3, "schedule": "constant"})
    recipe = spec.train.model_copy(update={"lr": 1e12})  # past the spec's range, which exists to prevent this
    data = prepare_data(spec)
    model = new_model(spec, data, torch_generator("init"), torch.device("cpu"))
    with pytest.raises(Diverged):
        fit(model, data.pool, recipe, torch_generator("order"))
