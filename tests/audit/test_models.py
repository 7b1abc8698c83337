import pytest
import torch

from audit.core.errors import SalunInputError
from audit.nn.models import build_model
from audit.core.seeds import torch_generator


@pytest.mark.parametrize(
    ("arch", "options", "shape", "features"),
    [
        ("mlp", {"hidden": (32, 16)}, (1, 8, 8), 16),
        ("cnn", {"width": 4}, (1, 8, 8), 16),
        ("cnn", {"width": 4}, (1, 28, 28), 16),
        ("resnet18", {"width": 4}, (3, 32, 32), 32),
        ("resnet18", {"width": 4}, (1, 8, 8), 32),
    ],
)
def test_models_expose_penultimate_features_and_classify(arch, options, shape, features):
    model = build_model(arch, options, shape, 10, torch_generator("t"))
    x = torch.randn(3, *shape, generator=torch_generator("x"))
    model.eval()
    assert model.features(x).shape == (3, features)
    assert torch.equal(model(x), model.head(model.features(x)))
    assert model(x).shape == (3, 10)


def test_init_depends_only_on_the_generator_and_never_on_global_rng():
    state = torch.random.get_rng_state()
    a = build_model("resnet18", {"width": 4}, (3, 32, 32), 10, torch_generator("seed", 1))
    assert torch.equal(state, torch.random.get_rng_state())
    torch.manual_seed(12345)  # a different global state must not matter
    b = build_model("resnet18", {"width": 4}, (3, 32, 32), 10, torch_generator("seed", 1))
    c = build_model("resnet18", {"width": 4}, (3, 32, 32), 10, torch_generator("seed", 2))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.head.weight, c.head.weight)
    assert torch.equal(a.stem[1].running_var, torch.ones(4))  # norm layers reset, not left empty


def test_default_init_has_pytorch_scale():
    model = build_model("mlp", {"hidden": (256,)}, (1, 8, 8), 10, torch_generator("s"))
    bound = 1 / 8  # kaiming_uniform with a = sqrt(5) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 64
    weight = model.body[1].weight
    assert weight.abs().max() <= bound and weight.abs().max() > 0.95 * bound


def test_unknown_architecture_suggests_a_close_name():
    with pytest.raises(SalunInputError, match="unknown model 'resnet' \\(did you mean 'resnet18'\\?\\)"):
        build_model("resnet", {}, (1, 8, 8), 10, torch_generator("s"))
