"""Checkpoints for a [subject] audit, made as a team outside salun would make them.

Trains, with a plain PyTorch loop, an original MLP on the digits training pool, then two
unlearned models for one forget request (by default every pool image of the digit 3; with
`--forget random`, 10 % of the pool drawn with a fixed seed):
`team_finetune`, the original fine-tuned on the retain set for a few epochs, and
`team_retrain`, a new model trained from scratch on the retain set with the original's recipe.
It writes the forget request (`forget.txt`, dataset indices), the three checkpoints (the
original as safetensors, the unlearned ones as `torch.save(model.state_dict())`) and
`audit.toml`, whose relative paths salun resolves from that file's folder.

The training is the team's own; only the data split and its standardisation, and the network's
definition, come from salun, because the audit's retrained reference models train on exactly
that pool with exactly that architecture. Every random draw has its own seed, so two runs write
identical files.

    python examples/digits-subject/make_checkpoints.py
    salun audit examples/digits-subject/audit.toml --out digits-subject-report
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from audit.config.spec import load_spec, spec_from_dict
from audit.data.datasets import AuditData, prepare_data
from audit.nn.models import build_model

HERE = Path(__file__).resolve().parent
DATA = {"dataset": "digits", "seed": 0}
HIDDEN = [128, 64]
EPOCHS = 30  # the original's and the retrain's; the audit's [train] must say the same
BATCH_SIZE, LR, MOMENTUM, WEIGHT_DECAY = 64, 0.05, 0.9, 5e-4
FINETUNE_EPOCHS, FINETUNE_LR = 5, 0.01
FORGET_CLASS, FORGET_SHARE = 3, 0.1
SEEDS = {"forget": 11, "original": 12, "retrain": 13, "finetune": 14}
ORIGINAL = "original.safetensors"
UNLEARNED = {"team_finetune": "team_finetune.pt", "team_retrain": "team_retrain.pt"}
FORGET_FILE = "forget.txt"

AUDIT_TOML = """\
# A [subject] audit: checkpoints trained and unlearned outside salun, audited as they are.
# make_checkpoints.py writes this file, forget.txt and the checkpoints; run it first:
#   python examples/digits-subject/make_checkpoints.py
#   salun audit examples/digits-subject/audit.toml
# Relative paths are read from this file's folder.

[audit]
name = "digits-subject"
seeds = 10                 # retrained reference models each checkpoint is compared with

[data]
dataset = "{dataset}"
seed = {seed}

[forget]
kind = "indices"
indices_file = "{forget_file}"

[model]                    # the architecture the checkpoints load into
arch = "mlp"
hidden = {hidden}

[train]                    # the recipe the original was trained with: the references use it too
epochs = {epochs}
batch_size = {batch_size}
optimizer = "sgd"
lr = {lr}
momentum = {momentum}
weight_decay = {weight_decay}
schedule = "cosine"

[attacks]                  # U-LiRA needs the method itself: a [subject] audit leaves it out
run = ["threshold", "svc", "lira", "rmia"]

[relearn]
run = ["retain"]

[subject]
original = "{original}"
unlearned = {{ {unlearned} }}

[unlearners.identity]      # controls, applied once to the original: identity must fail
[unlearners.retrain]       # and salun's own retrain must pass
"""


def audit_toml(epochs: int = EPOCHS) -> str:
    """The audit config for checkpoints trained for `epochs` epochs."""
    unlearned = ", ".join(f'{label} = "{path}"' for label, path in UNLEARNED.items())
    return AUDIT_TOML.format(**DATA, forget_file=FORGET_FILE, hidden=HIDDEN, epochs=epochs, batch_size=BATCH_SIZE,
                             lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, original=ORIGINAL,
                             unlearned=unlearned)


def forget_request(kind: str = "class") -> np.ndarray:
    """The dataset indices of the examples to forget: every pool image of FORGET_CLASS, or a
    random FORGET_SHARE of the pool."""
    data = prepare_data(spec_from_dict({"data": DATA, "unlearners": {"identity": {}}}))
    pool, labels = data.pool_index, data.pool.y.numpy()
    if kind == "class":
        return np.sort(pool[labels == FORGET_CLASS])
    rng = np.random.default_rng(SEEDS["forget"])
    return np.sort(rng.choice(pool, size=round(FORGET_SHARE * len(pool)), replace=False))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, seed: int,
          cosine: bool = True) -> nn.Module:
    """SGD with momentum and weight decay over shuffled batches, the rate annealed per step."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    steps = epochs * -(-len(x) // BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps) if cosine else None
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(BATCH_SIZE):
            optimizer.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def new_model(data: AuditData, seed: int) -> nn.Module:
    return build_model("mlp", {"hidden": HIDDEN}, data.input_shape, data.num_classes,
                       torch.Generator().manual_seed(seed))


def make_models(data: AuditData, epochs: int) -> dict[str, nn.Module]:
    """The original, trained on the whole pool, and the two unlearned models."""
    x, y = data.pool.x, data.pool.y
    retain = torch.from_numpy(data.retain)
    original = train(new_model(data, SEEDS["original"]), x, y, epochs, LR, SEEDS["original"])
    finetuned = new_model(data, SEEDS["original"])
    finetuned.load_state_dict(original.state_dict())
    train(finetuned, x[retain], y[retain], min(FINETUNE_EPOCHS, epochs), FINETUNE_LR, SEEDS["finetune"], cosine=False)
    retrained = train(new_model(data, SEEDS["retrain"]), x[retain], y[retain], epochs, LR, SEEDS["retrain"])
    return {"original": original, "team_finetune": finetuned, "team_retrain": retrained}


def write_checkpoints(models: dict[str, nn.Module], out: Path) -> None:
    save_file(models["original"].state_dict(), str(out / ORIGINAL))
    for label, name in UNLEARNED.items():
        torch.save(models[label].state_dict(), out / name)


def report(models: dict[str, nn.Module], data: AuditData) -> None:
    forget = torch.from_numpy(data.forget)
    retain = torch.from_numpy(data.retain)
    print(f"{'model':<14} {'forget acc':>10} {'retain acc':>10} {'test acc':>9}")
    for label, model in models.items():
        print(f"{label:<14} {accuracy(model, data.pool.x[forget], data.pool.y[forget]):>10.3f} "
              f"{accuracy(model, data.pool.x[retain], data.pool.y[retain]):>10.3f} "
              f"{accuracy(model, data.test.x, data.test.y):>9.3f}")


def make(out: Path, epochs: int = EPOCHS, forget: str = "class") -> Path:
    """Writes forget.txt, the checkpoints and audit.toml into `out`; returns audit.toml's path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / FORGET_FILE).write_text("".join(f"{int(i)}\n" for i in forget_request(forget)))
    config = out / "audit.toml"
    config.write_text(audit_toml(epochs))
    data = prepare_data(load_spec(config))  # the pool and forget set exactly as the audit will see them
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # fastest for a network this small, and the same sums in every run
    try:
        models = make_models(data, epochs)
    finally:
        torch.set_num_threads(threads)
    write_checkpoints(models, out)
    report(models, data)
    return config


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of epochs, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: this example's)")
    parser.add_argument("--epochs", type=positive, default=EPOCHS,
                        help=f"epochs of the original and the retrain (default {EPOCHS}); [train] records it")
    parser.add_argument("--forget", choices=("class", "random"), default="class",
                        help=f"forget every pool image of the digit {FORGET_CLASS} (default), "
                             f"or a random {FORGET_SHARE:.0%} of the pool")
    args = parser.parse_args(argv)
    config = make(args.out, args.epochs, args.forget)
    print(f"wrote {config}; audit it with: salun audit {config}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
