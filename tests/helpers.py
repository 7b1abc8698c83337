"""Shared test helpers: the small audit spec and a TOML writer."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from audit.config.spec import Spec, spec_from_dict

SMALL = {
    "audit": {"name": "small", "seeds": 2, "device": "cpu", "reports": ["html", "junit"]},  # PDFs: tests/reports
    "data": {"dataset": "digits", "seed": 0},
    "forget": {"kind": "random", "fraction": 0.1},
    "model": {"arch": "mlp", "hidden": [32]},
    "train": {"epochs": 8, "batch_size": 64, "lr": 0.05},
    "attacks": {"run": []},  # membership inference has its own tests
    "unlearners": {
        "identity": {},
        "retrain": {},
        "finetune": {"epochs": 2},
        "grad_ascent": {"epochs": 2},
    },
}


def small_config(**overrides) -> dict:
    """The small test spec with sections updated from `overrides` (section -> dict).

    A None value removes that field (or, for a whole section, the section); `unlearners`
    is replaced, not merged.
    """
    config = copy.deepcopy(SMALL)
    for section, values in overrides.items():
        if values is None:
            config.pop(section, None)
        elif section == "unlearners":
            config[section] = values
        else:
            target = config.setdefault(section, {})
            for key, value in values.items():
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = value
    return config


def small_spec(tmp_path: Path, **overrides) -> Spec:
    config = small_config(**overrides)
    config["audit"].setdefault("store", str(tmp_path / "store"))
    return spec_from_dict(config, base_dir=tmp_path)


def write_toml(path: Path, config: dict) -> Path:
    """A TOML file of `config` (tables of scalars and lists, as audit configs are)."""
    lines = []

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    def table(name, body):
        scalars = {k: v for k, v in body.items() if not isinstance(v, dict)}
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for k, v in body.items():
            if isinstance(v, dict):
                table(f"{name}.{k}", v)

    for name, body in config.items():
        table(name, body)
    path.write_text("\n".join(lines) + "\n")
    return path


def processes_where(field: int, value: int, live_only: bool = False) -> list[int]:
    """The pids whose /proc stat `field` (after the command name: 1 parent, 2 process group)
    equals `value`; with `live_only`, zombies (which have ended) are left out."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[field]) == value and not (live_only and fields[0] in ("Z", "X")):
            found.append(int(stat.parent.name))
    return found
