"""The reports and `salun report` load without torch, the statistics, the engine's training code
or the plugins: re-rendering a results.json needs only the file, so it takes a fraction of the
time an audit's first import does, and works where torch is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIGHT_MODULES = ("audit.cli", "audit.results.document", "audit.results.schema", "reports.html", "reports.junit",
                 "reports.markdown", "reports.pdf", "reports.plots", "reports.write", "reports.frames",
                 "reports.compare", "reports.compare_text")
REFUSED = ("torch", "torchvision", "scipy", "unlearners", "attacks", "audit.pipeline", "audit.config",
           "audit.nn", "audit.data", "audit.stats", "audit.tasks", "audit.engine.execute")

REFUSING_SALUN = textwrap.dedent("""
    import atexit, importlib.abc, sys

    REFUSED, attempted = tuple(sys.argv[1].split(",")), []

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == refused or name.startswith(refused + ".") for refused in REFUSED):
                attempted.append(name)
                raise ImportError(f"{name} is refused here")
            return None

    sys.meta_path.insert(0, Refuse())
    atexit.register(lambda: print(f"refused: {sorted(set(attempted))}", file=sys.stderr))
    from audit.cli import main

    sys.exit(main(sys.argv[2:]))
""")


def python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_reports_and_the_results_file_load_without_torch():
    code = "import importlib, json, sys\n" \
           "for name in sys.argv[1:]: importlib.import_module(name)\n" \
           "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))"
    run = python("-c", code, *LIGHT_MODULES)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []


def test_salun_report_renders_every_format_with_torch_and_the_plugins_refused(default_example, tmp_path):
    _, out = default_example
    run = python("-c", REFUSING_SALUN, ",".join(REFUSED), "report", str(out / "results.json"),
                 "--format", "html,junit,markdown,pdf", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert "refused: []" in run.stderr  # not even an import whose ImportError was caught
    for name in ("report.html", "junit.xml", "report.md", "report.pdf"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "report.html").read_text() == (out / "report.html").read_text()


def test_the_refusing_finder_refuses():
    run = python("-c", REFUSING_SALUN, "audit.cli", "--version")
    assert run.returncode == 1 and "audit.cli is refused here" in run.stderr
    assert "refused: ['audit.cli']" in run.stderr
