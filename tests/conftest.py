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
