"""Conformance checks every registered unlearner must pass, on a small real problem.

Same seed gives the same weights; the input model is untouched; the output differs from
the input (the identity control excepted) and has the input's architecture; it runs on
the CPU with finite weights; it works with only the data its tags ask for; and it obeys
the constraints it declares about its own output (`Unlearner.verify`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import SimpleNamespace
from dataclasses import dataclass, field

import torch
from torch import nn

from audit.core.contracts import Subset
from audit.data.datasets import AuditData, prepare_data
from audit.nn.ddpm import Denoiser, NoiseSchedule, train_denoiser
from audit.tasks.classification.jobs import make_task, new_model
from audit.core.params import keyword_parameters
from audit.core.registry import UNLEARNERS
from audit.core.seeds import torch_generator
from audit.config.spec import Spec, spec_from_dict
from audit.nn.training import fit
from audit.core.contracts import Task, Unlearner

CHECK_SPEC = {
    "audit": {"seeds": 1, "device": "cpu"},
    "data": {"dataset": "digits", "seed": 0},
    "forget": {"kind": "random", "count": 60},
    "model": {"arch": "mlp", "hidden": [32]},
    "train": {"epochs": 4, "batch_size": 64, "lr": 0.05},
    "unlearners": {"identity": {}},
}


@dataclass
class CheckReport:
    name: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def expect(self, condition: bool, what: str, why: str = "") -> None:
        if condition:
            self.passed.append(what)
        else:
            self.failed.append(f"{what}{': ' + why if why else ''}")

    def __str__(self) -> str:
        lines = [f"{self.name}: {'ok' if self.ok else 'FAILED'}"]
        lines += [f"  pass  {p}" for p in self.passed] + [f"  FAIL  {f}" for f in self.failed]
        return "\n".join(lines)


@functools.lru_cache(maxsize=1)
def _problem() -> tuple[Spec, AuditData, nn.Module]:
    spec = spec_from_dict(CHECK_SPEC)
    data = prepare_data(spec)
    device = torch.device("cpu")
    original = new_model(spec, data, torch_generator("check", "init"), device)
    fit(original, data.pool, spec.train, torch_generator("check", "order"))
    return spec, data, original


def _task(unlearner: Unlearner, spec: Spec, data: AuditData, seed: int) -> Task:
    device = torch.device("cpu")
    return make_task(unlearner, data, spec.train, lambda g: new_model(spec, data, g, device),
                     torch_generator("check", "unlearn", seed), device)


def _classification_problem() -> tuple[nn.Module, Callable[[Unlearner, int], Task]]:
    spec, data, original = _problem()
    return original, lambda unlearner, seed: _task(unlearner, spec, data, seed)


GENERATION_RECIPE = SimpleNamespace(epochs=20, lr=3e-3, batch_size=32, p_uncond=0.1)


@functools.cache
def _generation_data() -> tuple[Subset, Subset, NoiseSchedule, dict[str, torch.Tensor]]:
    """Two classes of 4x4 images, bright (0, to forget) and dark (1), and a denoiser trained on both."""
    g = torch_generator("check", "generation data")
    x = torch.cat([1 + 0.1 * torch.randn(48, 1, 4, 4, generator=g), -1 + 0.1 * torch.randn(48, 1, 4, 4, generator=g)])
    y = torch.cat([torch.zeros(48, dtype=torch.long), torch.ones(48, dtype=torch.long)])
    schedule = NoiseSchedule(steps=50)
    model = Denoiser((1, 4, 4), 2, width=16, generator=torch_generator("check", "generation init"))
    r = GENERATION_RECIPE
    train_denoiser(model, Subset(x, y), schedule, r.epochs, r.lr, r.batch_size, torch_generator("check", "fit"),
                   r.p_uncond)
    return Subset(x[:48], y[:48]), Subset(x[48:], y[48:]), schedule, _snapshot(model)


def _generation_problem() -> tuple[nn.Module, Callable[[Unlearner, int], Task]]:
    forget, retain, schedule, weights = _generation_data()

    def build(generator: torch.Generator) -> nn.Module:
        return Denoiser((1, 4, 4), 2, width=16, generator=generator)

    original = build(torch.Generator())
    original.load_state_dict(weights)

    def task(unlearner: Unlearner, seed: int) -> Task:
        return Task(forget=forget, retain=retain if unlearner.tags.needs_retain else None, test=None, num_classes=2,
                    device=torch.device("cpu"), generator=torch_generator("check", "unlearn", seed),
                    recipe=GENERATION_RECIPE, build_model=build, forget_classes=(0,), schedule=schedule)

    return original, task


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check_signature(cls: type[Unlearner], report: CheckReport) -> Unlearner | None:
    parameters = keyword_parameters(cls)
    missing = [n for n, p in parameters.items() if p.default is inspect.Parameter.empty]
    report.expect(not missing, "every hyperparameter has a default", f"no default for {missing}")
    try:
        unlearner = cls()
        params = unlearner.get_params()
        report.expect(type(unlearner)(**params).get_params() == params,
                      "get_params round-trips through __init__")
    except Exception as error:  # a plugin's constructor may fail in any way
        report.expect(False, "constructs with its defaults", f"{type(error).__name__}: {error}")
        return None
    return unlearner


def check_unlearner(target: str | type[Unlearner] | Unlearner) -> CheckReport:
    """Run the conformance checks on a registered name, a class or an instance."""
    if isinstance(target, str):
        target = UNLEARNERS.get(target)
    cls = target if isinstance(target, type) else type(target)
    report = CheckReport(getattr(cls, "__name__", str(cls)))
    if not (isinstance(cls, type) and issubclass(cls, Unlearner)):
        report.expect(False, "subclasses audit.core.contracts.Unlearner")
        return report
    unlearner = target if isinstance(target, Unlearner) else _check_signature(cls, report)
    if unlearner is None:
        return report
    problems = {"classification": _classification_problem, "generation": _generation_problem}
    if unlearner.tags.modality not in problems:
        report.expect(False, "modality is checked", f"no check problem for {unlearner.tags.modality!r}")
        return report
    original, make = problems[unlearner.tags.modality]()
    before = _snapshot(original)
    task = make(unlearner, 0)
    try:
        first = unlearner.unlearn(original, task)
        second = unlearner.unlearn(original, make(unlearner, 0))
    except Exception as error:
        report.expect(False, "unlearns on the CPU with the data its tags ask for",
                      f"{type(error).__name__}: {error}")
        return report
    report.expect(_same(before, original.state_dict()), "leaves the input model untouched")
    original.load_state_dict(before)
    out = first.state_dict()
    report.expect(out.keys() == before.keys() and all(out[k].shape == before[k].shape for k in out),
                  "returns the input's architecture")
    report.expect(all(t.device.type == "cpu" for t in out.values()), "returns a model on the CPU")
    report.expect(all(torch.isfinite(t).all() for t in out.values() if t.is_floating_point()),
                  "returns finite weights")
    report.expect(first is not original, "returns a new model, not its input")
    if unlearner.tags.deterministic:
        report.expect(_same(out, second.state_dict()), "same seed gives the same weights")
    if unlearner.tags.modifies_weights:
        report.expect(not _same(out, before), "changes the weights")
    else:
        report.expect(_same(out, before), "declares it changes nothing, and changes nothing")
    violations = unlearner.verify(original, first, task)
    report.expect(not violations, "obeys its declared constraints", "; ".join(violations))
    return report
