import pytest
import torch

from audit.nn.augment import POLICIES, make_augmentation
from audit.data.datasets import channel_statistics
from audit.pipeline import run_audit
from audit.config.spec import spec_from_dict
from audit.engine.store import Store
from helpers import small_config, small_spec

AUGMENTING = [p for p in POLICIES if p != "none"]
SHAPES = [(1, 8, 8), (3, 32, 32)]


def standardised(shape, n=64, seed=0):
    """A batch of random images in [0, 1], standardised as the audit stores them, and the statistics."""
    pixels = torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))
    mean, std = channel_statistics(pixels.numpy())
    x = (pixels - torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)) / torch.as_tensor(
        std, dtype=torch.float32).reshape(-1, 1, 1)
    return x, mean, std


def augmented(policy, x, mean, std, seed=0):
    return make_augmentation(policy, mean, std)(x, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("policy", AUGMENTING)
def test_a_policy_keeps_shape_dtype_and_the_pixel_range_and_changes_images(policy, shape):
    x, mean, std = standardised(shape)
    out = augmented(policy, x, mean, std)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all()
    low = torch.as_tensor((0 - mean) / std, dtype=torch.float32).reshape(-1, 1, 1)
    high = torch.as_tensor((1 - mean) / std, dtype=torch.float32).reshape(-1, 1, 1)
    assert (out >= low - 1e-5).all() and (out <= high + 1e-5).all()
    assert not torch.equal(out, x)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("policy", AUGMENTING)
def test_randomness_comes_from_the_generator_alone(policy, shape):
    x, mean, std = standardised(shape)
    state = torch.get_rng_state()
    first = augmented(policy, x, mean, std, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(12345)
    assert torch.equal(augmented(policy, x, mean, std, seed=1), first)
    assert not torch.equal(augmented(policy, x, mean, std, seed=2), first)


def test_the_generator_advances_so_each_batch_gets_new_draws():
    x, mean, std = standardised((1, 8, 8))
    augment, generator = make_augmentation("crop_flip", mean, std), torch.Generator().manual_seed(0)
    assert not torch.equal(augment(x, generator), augment(x, generator))


@pytest.mark.parametrize("policy", AUGMENTING)
def test_every_image_of_a_batch_gets_its_own_draw(policy):
    x, mean, std = standardised((3, 32, 32), n=1)
    out = augmented(policy, x.expand(32, -1, -1, -1).contiguous(), mean, std)
    assert len(torch.unique(out.flatten(1), dim=0)) > 2


def test_none_is_no_augmentation_and_an_unknown_policy_is_named():
    assert make_augmentation("none", [0.5], [0.25]) is None
    with pytest.raises(ValueError, match="'mixup'"):
        make_augmentation("mixup", [0.5], [0.25])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("policy", AUGMENTING)
def test_a_cuda_batch_gets_the_cpu_result_and_leaves_every_generator_alone(policy):
    x, mean, std = standardised((3, 32, 32))
    states = torch.get_rng_state(), torch.cuda.get_rng_state()
    on_cuda = augmented(policy, x.cuda(), mean, std)
    assert on_cuda.device == x.cuda().device
    assert torch.equal(torch.get_rng_state(), states[0]) and torch.equal(torch.cuda.get_rng_state(), states[1])
    assert torch.allclose(on_cuda.cpu(), augmented(policy, x, mean, std), atol=1e-6)


def test_the_spec_accepts_every_policy_and_defaults_to_none():
    assert spec_from_dict(small_config()).train.augmentation == "none"
    for policy in POLICIES:
        assert spec_from_dict(small_config(train={"augmentation": policy})).train.augmentation == policy


def test_an_audit_trains_with_its_policy_and_records_it(tmp_path):
    def audit(policy):
        spec = small_spec(tmp_path, audit={"seeds": 1}, train={"epochs": 2, "augmentation": policy},
                          unlearners={"identity": {}})
        results = run_audit(spec, tmp_path / policy, show_progress=False)
        (original,) = results["manifest"]["artifacts"]["original"]
        return results["manifest"]["augmentation"], Store(spec.audit.store).tensors(original)

    plain_policy, plain = audit("none")
    policy, weights = audit("crop_flip")
    assert (plain_policy, policy) == ("none", "crop_flip")
    assert any(not torch.equal(plain[name], weights[name]) for name in plain)
