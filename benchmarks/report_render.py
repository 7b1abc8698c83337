"""What `salun report` costs: re-rendering a results.json, against Python's own start.

Each case runs in a fresh subprocess, `--repeats` times; the table gives the median wall time,
the median CPU time (user + system, from resource.getrusage of the children), the CPU time
beyond `python -c pass`, the modules loaded and whether torch was among them.

Run: python benchmarks/report_render.py [RESULTS.json] [--repeats 3]
(default: salun-report/results.json, which `make audit` writes).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = ROOT / "salun-report" / "results.json"
CASES = {"html, junit, markdown": "html,junit,markdown", "pdf": "pdf", "junit": "junit", "markdown": "markdown"}

# `salun` as its console script runs it, then what it loaded, into the file argv[1] names
SALUN = ("import json, sys\n"
         "from audit.cli import main\n"
         "code = main(sys.argv[2:])\n"
         "with open(sys.argv[1], 'w') as f:\n"
         "    json.dump({'modules': len(sys.modules), 'torch': 'torch' in sys.modules}, f)\n"
         "sys.exit(code)\n")
START = "import sys; print(len(sys.modules))"


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one subprocess run of `command`, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])}… failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_run(command: list[str], repeats: int) -> tuple[float, float]:
    runs = [timed(command) for _ in range(repeats)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def measure(results: Path, repeats: int) -> list[tuple[str, float, float, int, bool]]:
    """Rows of (case, wall s, CPU s, modules loaded, torch loaded); the first is Python's start."""
    wall, cpu = median_run([sys.executable, "-c", "pass"], repeats)
    start_modules = int(subprocess.run([sys.executable, "-c", START], capture_output=True, text=True).stdout)
    rows = [("python -c pass", wall, cpu, start_modules, False)]
    with tempfile.TemporaryDirectory() as folder:
        loaded = Path(folder) / "loaded.json"
        for case, formats in CASES.items():
            command = [sys.executable, "-c", SALUN, str(loaded), "-q", "report", str(results),
                       "--format", formats, "--out", folder]
            wall, cpu = median_run(command, repeats)
            seen = json.loads(loaded.read_text())
            rows.append((f"salun report --format {formats}", wall, cpu, seen["modules"], seen["torch"]))
    return rows


def table(rows: list[tuple[str, float, float, int, bool]]) -> str:
    start_cpu = rows[0][2]
    lines = [f"{'case':<44} {'wall s':>7} {'CPU s':>7} {'CPU beyond start':>17} {'modules':>8}  torch",
             "-" * 94]
    for case, wall, cpu, modules, torch in rows:
        lines.append(f"{case:<44} {wall:>7.2f} {cpu:>7.2f} {cpu - start_cpu:>17.2f} {modules:>8}  "
                     f"{'yes' if torch else 'no'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.results.is_file():
        raise SystemExit(f"{args.results} not found: run `make audit` first (it writes salun-report/results.json) "
                         "or pass the path of a results.json")
    print(f"{args.results}, median of {args.repeats} run(s), each in a fresh process:\n")
    print(table(measure(args.results, args.repeats)))


if __name__ == "__main__":
    main()
