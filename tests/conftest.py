from __future__ import annotations

from pathlib import Path

import pytest

from audit.cli import main


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `salun ARGS` in this process from a folder; returns (exit code, stdout, stderr)."""

    def run(*args: str, cwd: Path | None = None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def default_example(tmp_path_factory):
    """The built-in default audit, run once per test session: (results, output folder)."""
    from audit.pipeline import run_audit
    from audit.config.spec import default_spec, spec_from_dict

    folder = tmp_path_factory.mktemp("default-example")
    config = default_spec().to_dict()
    config["audit"]["store"] = str(folder / "store")
    results = run_audit(spec_from_dict(config), folder / "out", show_progress=False)
    return results, folder / "out"
