"""benchmarks/gpu_check.py's dry run: every section's code on the CPU, each reporting numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@pytest.mark.slow  # 1.5 to 2 minutes on two shared cores: twelve audits, three of them in fresh processes
def test_the_dry_run_fills_every_section_with_numbers(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads((tmp_path / "gpu_check.json").read_text())
    sections = document["sections"]
    assert set(sections) == {"a_device_agreement", "b_verify", "c_gpu_executor", "d_vectorised_trainer"}
    assert not [name for name, section in sections.items() if "error" in section], sections

    agreement = sections["a_device_agreement"]["rows"]
    assert [(row["kind"], row["arch"]) for row in agreement] == [
        ("classifier", "mlp"), ("classifier", "cnn"), ("classifier", "resnet18"), ("classifier", "fastcifar"),
        ("ddpm", "mlp"), ("ddpm", "unet")]
    # the dry run compares the CPU with itself: the same init and batches must give the same numbers
    assert all(row["weights"] == 0.0 and row["within_tolerance"] for row in agreement)
    assert all(row["logits"] == 0.0 for row in agreement if row["kind"] == "classifier")

    verify = sections["b_verify"]
    assert verify["verify"]["verified"] and "bit for bit" in verify["verify"]["output"]
    assert verify["against_cpu"]["differences"] == 0 and _is_number(verify["audit_seconds"])

    for name in ("c_gpu_executor", "d_vectorised_trainer"):
        rows = sections[name]["rows"]
        assert sections[name]["available"] and rows
        for row in rows:
            assert row["models_per_minute"] > 0 and _is_number(row["seconds"]) and row["models_trained"] >= 4
            assert row["gpu_busy"]["samples"] == 0  # no GPU to sample on the CPU
    assert {(row["trainer"], row["n"]) for row in sections["d_vectorised_trainer"]["rows"]} == {
        ("per_model", 2), ("per_model", 4), ("vectorised", 2), ("vectorised", 4)}
    table = (tmp_path / "gpu_check.md").read_text()
    assert "(c) executor processes" in table and "| vectorised | 4 |" in table
