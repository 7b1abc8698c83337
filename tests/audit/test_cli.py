import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import small_config, write_toml
from unlearners.finetune import FineTune


def assert_one_clear_line(code, err, fragment):
    lines = err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1, err
    assert lines[0].startswith("salun: error: ") and fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"unlearners": {"finetun": {}}}, "unlearners.finetun: unknown unlearner 'finetun' (did you mean 'finetune'?)"),
        ({"train": {"lr": "fast"}}, "train.lr: Input should be a valid number (got 'fast')"),
        ({"forget": {"fraction": 1.0}}, "forget.fraction: Input should be less than 1"),
        ({"data": {"dataset": "MNIST", "root": "no-such-folder"}}, "data.root: folder not found"),
    ],
)
def test_bad_config_gives_one_line_and_exit_code_2(cli, tmp_path, overrides, fragment):
    config = write_toml(tmp_path / "bad.toml", small_config(**overrides))
    code, out, err = cli("audit", str(config), cwd=tmp_path)
    assert_one_clear_line(code, err, fragment)
    assert not (tmp_path / "salun-report").exists()


def test_missing_config_file_gives_one_line_and_exit_code_2(cli, tmp_path):
    code, _, err = cli("audit", str(tmp_path / "absent.toml"))
    assert_one_clear_line(code, err, "config file not found")


def test_usage_errors_are_bad_input_too(cli):
    code, _, err = cli("audit", "--workers", "0")
    assert_one_clear_line(code, err, "--workers")
    code, _, err = cli("report", "x.json", "--format", "docx")
    assert_one_clear_line(code, err, "--format")


def test_the_console_script_reports_bad_input_with_exit_code_2(tmp_path):
    script = Path(sys.executable).parent / "salun"
    run = subprocess.run([str(script), "validate", str(tmp_path / "absent.toml")], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"salun: error: config file not found: {tmp_path / 'absent.toml'}"]


def test_validate_prints_the_resolved_spec(cli, tmp_path):
    config = write_toml(tmp_path / "ok.toml", small_config())
    code, out, err = cli("validate", str(config))
    assert code == 0
    resolved = json.loads(out)
    assert resolved["unlearners"]["finetune"]["lr"] == FineTune.lr  # the default, filled in
    assert "valid" in err


def test_init_writes_the_example_and_does_not_overwrite(cli, tmp_path):
    code, _, _ = cli("init", str(tmp_path / "audit.toml"))
    assert code == 0
    code, out, _ = cli("validate", str(tmp_path / "audit.toml"))
    assert code == 0 and json.loads(out)["data"]["dataset"] == "digits"
    code, _, err = cli("init", str(tmp_path / "audit.toml"))
    assert_one_clear_line(code, err, "exists; pass --force")


def test_list_shows_every_plugin_and_where_it_came_from(cli):
    code, out, _ = cli("list")
    assert code == 0
    for name in ("identity", "retrain", "finetune", "random_label", "grad_ascent", "svc",
                 "digits", "MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "SVHN", "mlp", "cnn", "resnet18"):
        line = next((l for l in out.splitlines() if l.split()[:1] == [name]), None)
        assert line is not None, name
        assert "salun 0.1.0" in line
    for group in ("salun.unlearners", "salun.attacks", "salun.datasets", "salun.models"):
        assert group in out


@pytest.mark.parametrize(("rule", "code", "verdict"), [
    ("metrics.RA >= 0.5", 0, "PASS"),
    ("metrics.RA <= 0.5", 1, "FAIL"),
    ("mia.ulira.auc <= 0.55", 3, "INCONCLUSIVE"),
])
def test_gate_exits_with_the_policy_verdict(cli, tmp_path, rule, code, verdict):
    config = small_config(audit={"seeds": 2, "store": str(tmp_path.parent / "gate-store")},
                          policy={"rules": [rule]}, unlearners={"finetune": {"epochs": 2}})
    path = write_toml(tmp_path / "gate.toml", config)
    assert cli("audit", str(path), "--gate", cwd=tmp_path)[0] == code
    results = json.loads((tmp_path / "salun-report" / "results.json").read_text())
    assert results["verdict"] == verdict and results["policy"]["rules"] == [rule]
    assert cli("audit", str(path), cwd=tmp_path)[0] == 0  # without --gate the verdict does not set the exit code


def test_an_internal_error_is_one_line_with_the_traceback_saved(cli, monkeypatch):
    from audit import cli as cli_module

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(cli_module.COMMANDS, "list", broken)
    code, _, err = cli("list")
    assert code == 4
    [line] = err.strip().splitlines()
    assert line.startswith("salun: internal error: ZeroDivisionError: a bug (the traceback is in ")
    saved = Path(line.split("the traceback is in ")[1].split(";")[0])
    assert "raise ZeroDivisionError" in saved.read_text()
    saved.unlink()


def test_compare_reports_bad_input_as_one_line(cli, tmp_path):
    code, _, err = cli("compare", str(tmp_path / "old.json"))
    assert_one_clear_line(code, err, "new")
    code, _, err = cli("compare", "old.json", "new.json", "--format", "html")
    assert_one_clear_line(code, err, "--format")
    code, _, err = cli("compare", str(tmp_path / "old.json"), str(tmp_path / "new.json"))
    assert_one_clear_line(code, err, f"results file not found: {tmp_path / 'old.json'}")


def test_report_offers_csv_among_its_formats(cli):
    code, _, err = cli("report", "x.json", "--format", "xlsx")
    assert_one_clear_line(code, err, "csv")
