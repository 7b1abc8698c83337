"""The policy's false-alarm rate and power, measured (see audit/tasks/classification/calibration.py for the design).

Trains, in one audit store, `--pool` reference retrains, `--pool` retrain-control models
(seeds independent of the first), and `--pool` models of each method of known leakage
(identity, partial_retrain keeping 50 % and 25 % of the forget set, SalUn), all with the
default example's recipe (or `--config`'s). Then, for every N in `--sides`:

- `--null-draws` null draws: two disjoint populations of N retrained models, every probe and
  rule run as if one were the method. Reported: each rule's FAIL rate, the default policy's
  (any default rule FAILs), and each ε lower bound's false-positive rate, with 95 %
  Clopper-Pearson intervals;
- `--power-draws` power draws: N reference retrains against N models of each method.
  Reported: the share of draws in which the default policy FAILs the method, and each rule's.

Rules beyond the default can be measured with `--rule` (repeatable). Run:
python benchmarks/calibration.py [--pool 64] [--sides 8 16] [--null-draws 200] [--power-draws 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


from audit.tasks.classification.calibration import NULL, POWER_METHODS, calibration_spec, draw, method_fails, outcomes, rate
from audit.data.datasets import prepare_data
from audit.engine.execute import execute
from audit.engine.options import ExecutorChoice
from audit.tasks.classification.plan import build_plan
from audit.config.policy import DEFAULT_RULES
from audit.engine.progress import Progress
from audit.core.seeds import numpy_generator
from audit.config.spec import default_spec, load_spec, spec_from_dict
from audit.engine.store import Store
from audit.nn.training import resolve_device

TWO_SIDED = "mia.lira_offline_two_sided.auc <= 0.55"
_STATE: dict = {}


def _start(config: dict, base_dir: str) -> None:
    import torch

    torch.set_num_threads(1)
    spec = spec_from_dict(config, base_dir=Path(base_dir))
    data, device = prepare_data(spec), resolve_device("cpu")
    _STATE.update(spec=spec, data=data, device=device, plan=build_plan(spec, data, device),
                  store=Store(spec.audit.store))


def _one(task: tuple[str, int, int]) -> tuple[str, int, dict]:
    kind, n, index = task
    s = _STATE
    reference, unlearned = draw(kind, n, numpy_generator("calibration", kind, n, index), s["plan"])
    return kind, n, outcomes(s["spec"], s["data"], s["plan"], s["store"], s["device"], reference, unlearned)


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _shown(r: dict) -> str:
    interval = f" [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]" if r["ci95"] else ""
    return f"{r['rate']:.3f}{interval}"


def summarise(draws: dict, rules: tuple[str, ...], default: tuple[str, ...]) -> dict:
    summary: dict = {}
    for (kind, n), found in sorted(draws.items()):
        entry: dict = {}
        if kind == "null":
            method = [d[NULL] for d in found]
            entry["rules"] = {rule: rate([m["rules"].get(rule) == "FAIL" for m in method]) for rule in rules}
            entry["default_policy"] = rate([method_fails(m["rules"], default) for m in method])
            bounds = {f"method: {b}": rate([m["bounds"][b] for m in method]) for b in method[0]["bounds"]}
            bounds |= {f"reference retrains: {b}": rate([d["reference_retrain"]["bounds"][b] for d in found])
                       for b in found[0]["reference_retrain"]["bounds"]}
            entry["bounds"] = bounds
        else:
            entry["methods"] = {label: {"default_policy": rate([method_fails(d[label]["rules"], default) for d in found]),
                                        "rules": {rule: rate([d[label]["rules"].get(rule) == "FAIL" for d in found])
                                                  for rule in rules}}
                                for label in POWER_METHODS}
        summary[f"{kind} N={n}"] = entry
    return summary


def report(summary: dict, rules: tuple[str, ...], alpha: float) -> str:
    out = []
    sides = sorted({int(k.split("N=")[1]) for k in summary})
    nulls = [summary[f"null N={n}"] for n in sides if f"null N={n}" in summary]
    if nulls:
        rows = [[f"`{rule}`", *(_shown(s["rules"][rule]) for s in nulls)] for rule in rules]
        rows.append(["default policy (any default rule)", *(_shown(s["default_policy"]) for s in nulls)])
        out.append(f"False alarms (FAIL on a null; allowed α + 0.02 = {alpha + 0.02:.2f}):\n\n"
                   + _table(rows, ["rule", *(f"N = {n}" for n in sides)]))
        names = list(nulls[0]["bounds"])
        rows = [[name, *(_shown(s["bounds"][name]) for s in nulls)] for name in names]
        out.append("ε lower bounds positive on a null (false positives; the per-example bound: share of examples):\n\n"
                   + _table(rows, ["bound", *(f"N = {n}" for n in sides)]))
    powers = [(n, summary[f"power N={n}"]) for n in sides if f"power N={n}" in summary]
    if powers:
        rows = [[label, *(_shown(s["methods"][label]["default_policy"]) for _, s in powers)] for label in POWER_METHODS]
        out.append("Power (the default policy FAILs the method):\n\n"
                   + _table(rows, ["method", *(f"N = {n}" for n, _ in powers)]))
        rows = [[label, f"`{rule}`", *(_shown(s["methods"][label]["rules"][rule]) for _, s in powers)]
                for label in POWER_METHODS for rule in rules]
        out.append("Power per rule:\n\n" + _table(rows, ["method", "rule", *(f"N = {n}" for n, _ in powers)]))
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="an audit config (default: the built-in example)")
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--sides", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--null-draws", type=int, default=200)
    parser.add_argument("--power-draws", type=int, default=100)
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples of each AUC interval")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rule", action="append", default=[TWO_SIDED], help="a rule to measure beside the default")
    parser.add_argument("--store", default=".salun-calibration")
    parser.add_argument("--json", help="write the measured tables here")
    args = parser.parse_args()
    if 2 * max(args.sides) > 2 * args.pool:
        sys.exit("--pool must hold at least two populations of the largest side")
    base = load_spec(Path(args.config)) if args.config else default_spec()
    rules = tuple(dict.fromkeys([*DEFAULT_RULES, *args.rule]))
    spec = calibration_spec(base, args.pool, args.bootstrap, rules, str(Path(args.store).resolve()))
    started = time.perf_counter()
    data, device = prepare_data(spec), resolve_device("cpu")
    plan = build_plan(spec, data, device)
    execute(plan.jobs, spec, Store(spec.audit.store), ExecutorChoice(workers=args.workers).resolve(spec.audit),
            Progress(len(plan.jobs), enabled=sys.stderr.isatty()))
    trained = time.perf_counter() - started
    tasks = [("null", n, i) for n in args.sides for i in range(args.null_draws)]
    tasks += [("power", n, i) for n in args.sides for i in range(args.power_draws)]
    draws: dict = {}
    with ProcessPoolExecutor(args.workers, initializer=_start,
                             initargs=(spec.to_dict(), str(spec._base_dir))) as pool:
        for done, (kind, n, found) in enumerate(pool.map(_one, tasks, chunksize=4), start=1):
            draws.setdefault((kind, n), []).append(found)
            if done % 50 == 0 or done == len(tasks):
                print(f"{done}/{len(tasks)} draws", file=sys.stderr, flush=True)
    summary = summarise(draws, rules, DEFAULT_RULES)
    print(f"{args.pool} models per population, {plan.retrains and len(data.forget)} forget examples; "
          f"training {trained:.0f} s, {len(tasks)} draws {time.perf_counter() - started - trained:.0f} s\n")
    print(report(summary, rules, spec.equivalence.alpha))
    if args.json:
        raw = {f"{kind} N={n}": found for (kind, n), found in sorted(draws.items())}
        Path(args.json).write_text(json.dumps({"args": vars(args), "summary": summary, "draws": raw}) + "\n")


if __name__ == "__main__":
    main()
