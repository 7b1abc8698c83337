"""`salun validate` on generated hostile configs, through the real console script.

The configs come from tests/config_fuzz.py (the generator the test suite fuzzes with): the
default config mutated field by field, random TOML documents, mangled TOML text. Each one runs
as `salun validate CONFIG` in its own process, with a timeout that marks a hang, and is sorted
into: valid (exit 0), rejected (exit 2 with one stderr line naming a field or the file),
traceback, hang, other. Prints the counts, and the first few configs of every failing kind.

    .venv/bin/python benchmarks/fuzz_configs.py [--count 1000] [--workers 2] [--timeout 60]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attacks, audit.cli, reports, unlearners  # noqa: F401,E401 - imported before tests/ joins the path, whose test folders share their names

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))

from hypothesis import Phase, given, settings  # noqa: E402

from config_fuzz import HANG, REJECTED, VALID, classify, config_texts, outcome, padded_rule_config  # noqa: E402

SALUN = Path(sys.executable).parent / "salun"


def generated_configs(count: int) -> list[str]:
    """`count` distinct configs drawn by Hypothesis from the test suite's strategy, deterministically."""
    drawn: dict[str, None] = {}

    @given(text=config_texts)
    @settings(max_examples=count * 2, derandomize=True, deadline=None, database=None, phases=[Phase.generate])
    def draw(text: str) -> None:
        if len(drawn) < count:
            drawn[text] = None

    draw()
    return list(drawn)


def validate(text: str, folder: Path, index: int, timeout: float) -> tuple[str, str]:
    config = folder / f"config-{index}.toml"
    config.write_text(text, encoding="utf-8")
    try:
        run = subprocess.run([str(SALUN), "validate", str(config)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return HANG, ""
    return classify(run.returncode, run.stderr, config), run.stderr


def time_padded_rules(folder: Path) -> None:
    """In-process `salun validate` of one rule padded on each side: linear parsing keeps 1 MB under a second."""
    for padding in (10_000, 100_000, 1_000_000):
        started = time.perf_counter()
        kind, stderr = outcome(padded_rule_config(padding), folder / "padded.toml")
        print(f"rule padded with {padding:>9,} spaces per side: {kind} in {time.perf_counter() - started:.3f} s"
              + ("" if kind == VALID else f" ({stderr.strip()})"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--padded-rule", action="store_true", help="only time the validation of padded rules")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a run counts as a hang")
    args = parser.parse_args()
    if args.padded_rule:
        with tempfile.TemporaryDirectory() as folder:
            time_padded_rules(Path(folder))
        return
    texts = generated_configs(args.count)
    counts: collections.Counter[str] = collections.Counter()
    failures: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(args.workers) as pool:
        runs = pool.map(lambda item: validate(item[1], Path(folder), item[0], args.timeout), enumerate(texts))
        for done, (text, (kind, stderr)) in enumerate(zip(texts, runs), start=1):
            counts[kind] += 1
            if kind not in (VALID, REJECTED):
                failures[kind].append((text, stderr))
            if done % 100 == 0:
                print(f"{done}/{len(texts)}: {dict(counts)}", file=sys.stderr, flush=True)
    print(f"configs: {len(texts)}")
    for kind in (VALID, REJECTED, "traceback", HANG, "other"):
        print(f"  {kind:<10} {counts[kind]}")
    for kind, cases in failures.items():
        for text, stderr in cases[:3]:
            print(f"--- {kind}:\n{text[:500]}\n--- stderr:\n{stderr[-1500:]}")


if __name__ == "__main__":
    main()
