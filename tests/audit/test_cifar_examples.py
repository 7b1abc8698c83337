"""The CIFAR-10 examples run through the real pipeline on a small fake CIFAR-10 folder, and the
fast CIFAR network trains, exposes its features and is built from its generator alone.

torchvision's CIFAR10 reads the python pickles of `cifar-10-batches-py` and accepts them only
if their MD5 sums are the published ones, which no small folder can have. The fixture writes
batches in exactly that format and sets the class's expected sums to those of the files it
wrote: torchvision's reader and salun's loader then run unchanged on the fake folder.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from audit.config.spec import load_spec, spec_from_dict
from audit.core.errors import SalunInputError
from audit.core.seeds import torch_generator
from audit.data.datasets import prepare_data
from audit.nn.models import build_model
from audit.pipeline import run_audit
from audit.results.document import load_results

EXAMPLES = Path(__file__).parents[2] / "examples"
TRAIN_BATCHES, PER_BATCH, TEST = 5, 24, 40
SIZES = {  # the examples' networks, narrowed so that an audit of them takes seconds on a CPU
    "cifar10-resnet18.toml": {"arch": "resnet18", "width": 4},
    "cifar10-fast.toml": {"arch": "fastcifar", "widths": [8, 16, 16]},
}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _batch(path: Path, images: np.ndarray, labels: np.ndarray) -> str:
    """One batch file as the CIFAR-10 python version stores it: rows of 3072 bytes, R then G then B."""
    with open(path, "wb") as file:
        pickle.dump({"data": images.reshape(len(images), -1), "labels": labels.tolist()}, file)
    return _md5(path)


@pytest.fixture
def fake_cifar10(tmp_path, monkeypatch) -> Path:
    """A folder torchvision.datasets.CIFAR10 reads: 5 x 24 training and 40 test images."""
    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar10" / CIFAR10.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def images(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % 10
        pixels = rng.integers(0, 256, size=(n, 3, 32, 32)) // 2 + labels[:, None, None, None] * 12
        return pixels.astype(np.uint8), labels

    train = [[f"data_batch_{i}", _batch(folder / f"data_batch_{i}", *images(PER_BATCH))]
             for i in range(1, TRAIN_BATCHES + 1)]
    test = [["test_batch", _batch(folder / "test_batch", *images(TEST))]]
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, file)
    monkeypatch.setattr(CIFAR10, "train_list", train)
    monkeypatch.setattr(CIFAR10, "test_list", test)
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": _md5(folder / "batches.meta")})
    return tmp_path / "cifar10"


def small_example(name: str, root: Path, store: Path):
    """The example's spec, resized: 2 seeds, 1 epoch of training and of each method, a narrow
    network, the CPU, no MIA shadows; every method and its other hyperparameters kept."""
    raw = load_spec(EXAMPLES / name).to_dict()
    raw["audit"].update(seeds=2, device="cpu", store=str(store), reports=[])
    raw["data"]["root"] = str(root)
    raw["model"] = SIZES[name]
    raw["train"]["epochs"] = 1
    raw["attacks"] = {"run": ["threshold"]}
    for params in raw["unlearners"].values():
        if "epochs" in params:
            params["epochs"] = 1
    return spec_from_dict(raw)


def test_the_fake_folder_loads_as_cifar10_with_its_official_split(fake_cifar10, tmp_path):
    data = prepare_data(small_example("cifar10-fast.toml", fake_cifar10, tmp_path / "store"))
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert len(data.pool) == TRAIN_BATCHES * PER_BATCH and len(data.test) == TEST
    assert len(data.forget) == round(0.1 * TRAIN_BATCHES * PER_BATCH)
    assert torch.allclose(data.pool.x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_a_changed_batch_file_is_refused_as_bad_input(fake_cifar10, tmp_path):
    batch = fake_cifar10 / "cifar-10-batches-py" / "data_batch_3"
    content = bytearray(batch.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one pixel
    batch.write_bytes(bytes(content))
    with pytest.raises(SalunInputError, match="^data.root: CIFAR10 not found under"):
        prepare_data(small_example("cifar10-fast.toml", fake_cifar10, tmp_path / "store"))


@pytest.mark.parametrize("name", sorted(SIZES))
def test_each_cifar_example_audits_every_method_to_a_verdict(name, fake_cifar10, tmp_path):
    spec = small_example(name, fake_cifar10, tmp_path / "store")
    results = run_audit(spec, tmp_path / "out", show_progress=False)
    assert results == load_results(tmp_path / "out" / "results.json")
    methods = set(load_spec(EXAMPLES / name).unlearners)
    assert set(results["metrics"]) == methods and set(results["method_verdicts"]) == methods
    for method in methods:
        assert results["metrics"][method]["UA"]["n"] == 2
        rules = {row["rule"] for row in results["verdicts"] if row["method"] == method}
        assert set(results["policy"]["rules"]) <= rules
    assert all(row["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") for row in results["verdicts"])
    assert results["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE")
    assert results["spec"]["model"]["arch"] == SIZES[name]["arch"]
    assert results["manifest"]["environment"]["device"] == "cpu"


def test_the_examples_keep_their_gpu_scale():
    resnet, fast = load_spec(EXAMPLES / "cifar10-resnet18.toml"), load_spec(EXAMPLES / "cifar10-fast.toml")
    assert (resnet.audit.seeds, resnet.model.arch, resnet.audit.device) == (16, "resnet18", "cuda")
    assert (fast.audit.seeds, fast.model.arch, fast.audit.device) == (64, "fastcifar", "cuda")
    for spec in (resnet, fast):
        assert spec.data.dataset == "CIFAR10" and spec.resolve_path(spec.data.root) == EXAMPLES / "data" / "cifar10"
        assert spec.forget.kind == "random" and spec.forget.fraction == 0.1
        assert {"identity", "retrain", "salun"} <= set(spec.unlearners)


def fast_net(seed: int = 1, widths: tuple[int, ...] = (64, 256, 256)):
    return build_model("fastcifar", {"widths": widths}, (3, 32, 32), 10, torch_generator("fastcifar", seed))


def test_the_fast_network_lowers_its_loss_on_a_fixed_batch():
    model = fast_net(widths=(16, 64, 64))
    generator = torch_generator("batch")
    x, y = torch.randn(32, 3, 32, 32, generator=generator), torch.randint(10, (32,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=5e-4)
    model.train()
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    assert losses[-1] < 0.6 * losses[0]


def test_the_fast_network_exposes_its_pooled_features():
    model = fast_net().eval()
    x = torch.randn(5, 3, 32, 32, generator=torch_generator("x"))
    assert model.features(x).shape == (5, 256)
    assert torch.equal(model(x), model.head(model.features(x)))
    narrow = build_model("fastcifar", {"widths": (8, 16)}, (1, 16, 16), 4, torch_generator("n"))
    assert narrow.eval().features(torch.randn(2, 1, 16, 16)).shape == (2, 16) and narrow.head.out_features == 4


def test_the_fast_network_is_built_from_its_generator_alone():
    state = torch.random.get_rng_state()
    a = fast_net(1)
    assert torch.equal(state, torch.random.get_rng_state())
    torch.manual_seed(999)  # a different global state must not matter
    b, c = fast_net(1), fast_net(2)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert not torch.equal(a.stem[0].weight, c.stem[0].weight)


def test_images_too_small_for_the_fast_network_are_refused_naming_the_field():
    with pytest.raises(SalunInputError, match=r"^model.widths: 3 groups need images of at least 9x9 pixels, got 8x8"):
        build_model("fastcifar", {}, (1, 8, 8), 10, torch_generator("s"))
