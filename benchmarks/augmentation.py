"""Does augmentation improve unlearning (Falcao & Cordeiro)? Avg. Gap per method and policy.

Runs `examples/digits-augmentation.toml` (SalUn, random labelling and fine-tuning against
retraining, random 10 % forgetting of digits) once per augmentation policy: the policy trains
the originals, the retrained models and the unlearning itself. Prints Avg. Gap (percent,
mean ± std over the config's seeds) per method and policy, and the relative change against
`none`. Trained models are cached in the config's store, so a rerun only recomputes what changed.

`--arch cnn` swaps the config's model for the convnet (with its default options).

Run: python benchmarks/augmentation.py [--arch cnn] [--policies none trivialaugment ...] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from audit.nn.augment import POLICIES
from audit.engine.options import ExecutorChoice
from audit.pipeline import run_audit
from audit.config.spec import load_spec, spec_from_dict

CONFIG = Path(__file__).resolve().parent.parent / "examples" / "digits-augmentation.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--policies", nargs="*", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--arch", help="replace the config's model by this registered one (default options)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    base = load_spec(args.config)
    gaps: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as out:
        for policy in args.policies:
            resolved = base.to_dict()
            resolved["train"]["augmentation"] = policy
            if args.arch:
                resolved["model"] = {"arch": args.arch}
            resolved["audit"]["store"] = str(base.resolve_path(base.audit.store))
            results = run_audit(spec_from_dict(resolved), Path(out) / policy,
                                executor=ExecutorChoice(workers=args.workers), show_progress=False)
            for label, row in results["metrics"].items():
                gaps.setdefault(label, {})[policy] = row["avg_gap"]
            print(f"{policy}: done", flush=True)
    seeds = base.audit.seeds
    model = args.arch or base.model.arch
    print(f"\n{model}: Avg. Gap (percent, mean ± std over {seeds} seeds); in brackets the change against none\n")
    print("| method | " + " | ".join(args.policies) + " |")
    print("|---|" + "---|" * len(args.policies))
    for label, row in gaps.items():
        cells = []
        for policy in args.policies:
            mean, std = row[policy]["mean"], row[policy]["std"]
            cell = f"{100 * mean:.2f} ± {100 * std:.2f}"
            if "none" in row and policy != "none" and row["none"]["mean"]:
                cell += f" ({100 * (mean / row['none']['mean'] - 1):+.0f} %)"
            cells.append(cell)
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
