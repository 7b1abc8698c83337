"""A job's key covers the code that computes it and nothing else: checked on copies of salun's
packages, edited, whose plan keys a subprocess computes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import audit
from audit.engine.code_digest import closure, module_digest
from audit.engine.job import OBSERVE, TRAIN, UNLEARN
from helpers import small_config

CHECKOUT = Path(audit.__file__).resolve().parent.parent
PACKAGES = ("audit", "attacks", "unlearners", "reports")

KEYS = """
import json, sys
from pathlib import Path
import torch
import audit
from audit.config.spec import spec_from_dict
from audit.data.datasets import prepare_data
from audit.tasks.classification.plan import build_plan

config, base = json.loads(sys.argv[1]), sys.argv[2]
spec = spec_from_dict(config, base_dir=Path(base))
plan = build_plan(spec, prepare_data(spec), torch.device("cpu"))
print(json.dumps({"audit": audit.__file__, "jobs": [[job.kind, job.label, job.key] for job in plan.jobs]}))
"""


def copy_of_salun(folder: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(CHECKOUT / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def plan_keys(copy: Path, tmp_path: Path) -> list[tuple[str, str, str]]:
    """(kind, label, key) of every job of the small plan, computed by the code in `copy`."""
    config = small_config()
    config["audit"]["store"] = str(tmp_path / "store")
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", KEYS, json.dumps(config), str(tmp_path)], env=env, cwd=copy,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert Path(answer["audit"]).resolve() == (copy / "audit" / "__init__.py").resolve()
    return [tuple(job) for job in answer["jobs"]]


def edit(path: Path) -> bytes:
    """Reword `path`'s module docstring, or give it one; the file's old bytes."""
    old = path.read_bytes()
    path.write_bytes(b'"""Edited. ' + old[3:] if old.startswith(b'"""') else b'"""Edited."""\n' + old)
    return old


def changed(before: list, after: list) -> set[tuple[str, str]]:
    """(kind, label) of the jobs whose key differs, the plans' jobs being the same."""
    assert [job[:2] for job in before] == [job[:2] for job in after]
    return {old[:2] for old, new in zip(before, after) if old != new}


def test_a_jobs_key_changes_with_the_code_that_computes_it_and_nothing_else(tmp_path):
    copy = copy_of_salun(tmp_path / "copy")
    base = plan_keys(copy, tmp_path)
    moved = shutil.copytree(copy, tmp_path / "elsewhere" / "copy")
    assert plan_keys(moved, tmp_path) == base  # neither the folder nor the process changes a key

    describe, html = edit(copy / "audit/results/describe.py"), edit(copy / "reports/html.py")
    assert plan_keys(copy, tmp_path) == base
    (copy / "audit/results/describe.py").write_bytes(describe)
    (copy / "reports/html.py").write_bytes(html)

    training = edit(copy / "audit/nn/training.py")
    retrained = changed(base, plan_keys(copy, tmp_path))
    trains = {job[:2] for job in base if job[0] == TRAIN}
    assert len(trains) == 4 and trains <= retrained
    (copy / "audit/nn/training.py").write_bytes(training)

    edit(copy / "unlearners/grad_ascent.py")
    method = {f"grad_ascent seed={seed}" for seed in (0, 1)}
    expected = {(UNLEARN, label) for label in method} | {(OBSERVE, f"observe {label}") for label in method}
    assert expected <= {job[:2] for job in base}
    assert changed(base, plan_keys(copy, tmp_path)) == expected


def test_a_runners_closure_holds_what_computes_and_stops_at_what_reports():
    runner = closure("audit.tasks.classification.jobs")
    assert {"audit.nn.training", "audit.nn.models", "audit.data.datasets", "audit.engine.store"} <= set(runner)
    assert not [name for name in runner if name.split(".")[:2] in (["audit", "config"], ["audit", "results"])]
    assert not [name for name in runner if name.split(".")[0] == "reports" or name == "audit.engine.job"]
    method = closure("unlearners.grad_ascent")
    assert {"unlearners.grad_ascent", "unlearners.sgd", "audit.nn.training"} <= set(method)
    assert "unlearners.finetune" not in method and "unlearners" not in method  # the package only registers


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """A third-party package on sys.path whose module imports a helper of its own and salun's training."""
    package = tmp_path / "site" / "someplugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("SCALE = 2\n")
    (package / "method.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import helper\n"
        "from audit.nn.training import fit\n"
        "if TYPE_CHECKING:\n"
        "    from audit.config.spec import Spec\n"
        "def unlearn():\n"
        "    from audit.results.describe import describe_methods\n")
    monkeypatch.syspath_prepend(str(package.parent))
    __import__("someplugin.method")
    yield package
    for name in [name for name in sys.modules if name.split(".")[0] == "someplugin"]:
        del sys.modules[name]


def test_a_third_party_plugins_closure_covers_its_own_package(plugin_package):
    code = closure("someplugin.method")
    assert set(code) == {"someplugin.method", "someplugin.helper", *closure("audit.nn.training")}
    assert code["someplugin.helper"] == hashlib.sha256((plugin_package / "helper.py").read_bytes()).hexdigest()
    assert module_digest("someplugin.method") != module_digest("someplugin.helper")
