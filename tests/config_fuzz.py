"""Hostile audit configs, generated: the built-in default config mutated field by field with
wrong types and out-of-range values, sections replaced by scalars and lists, unknown keys, and
random TOML documents and texts. Shared by tests/audit/test_fuzz_config.py and
benchmarks/fuzz_configs.py.

`outcome` runs `salun validate` on a config in-process and sorts the result into one of
VALID, REJECTED (exit 2, one stderr line naming a field or the file) or a failure kind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import tomllib
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from audit.cli import main
from audit.config.spec import Spec, default_spec_text

VALID, REJECTED, TRACEBACK, HANG, OTHER = "valid", "rejected", "traceback", "hang", "other"
DEFAULT = tomllib.loads(default_spec_text())
SECTIONS = tuple(Spec.model_fields)
ERROR_PREFIX = "salun: error: "


@dataclass(frozen=True)
class Deep:
    """An array (or inline table) nested `depth` levels, written without recursing."""

    depth: int
    table: bool = False


# --- TOML text -----------------------------------------------------------------------------

def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that DEL must be escaped too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, Deep):
        return ("{a = " * value.depth + "1" + "}" * value.depth) if value.table else \
            "[" * value.depth + "1" + "]" * value.depth
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")


def to_toml(document: dict[str, Any]) -> str:
    """The document as TOML text: plain values first, then one [table] per nested table."""
    lines: list[str] = []

    def table(header: list[str], body: dict[str, Any]) -> None:
        if header:
            lines.append("[" + ".".join(toml_string(part) for part in header) + "]")
        subtables = {k: v for k, v in body.items() if isinstance(v, dict)}
        lines.extend(f"{toml_string(k)} = {toml_value(v)}" for k, v in body.items() if k not in subtables)
        for key, value in subtables.items():
            table([*header, key], value)

    table([], document)
    return "\n".join(lines) + "\n"


# --- values ----------------------------------------------------------------------------------

HOSTILE_SCALARS = (
    0, -1, 1, 2**63, -(2**63) - 1, 2**70, 10**30, 0.0, -0.0, -1.5, 1.5, 1e308, 1e-320,
    math.inf, -math.inf, math.nan, True, False, "", " ", "\x00", "a\x00b", "\n", "line\nbreak", "\x7f",
    "x" * 300, "é" * 200, "日本語", "\U0001f600", "../" * 100, "/" + "a" * 256, "{}", "[1]", "0.1", "1",
    dt.date(1979, 5, 27), dt.datetime(1979, 5, 27, 7, 32), dt.time(7, 32),
)
HOSTILE_VALUES = (*HOSTILE_SCALARS, [], [1], [1, "a"], ["html", "html"], [[1]], [math.nan], {}, {"a": 1},
                  {"": {"": 1}}, Deep(40), Deep(1000), Deep(40, table=True), Deep(1000, table=True))

scalars = st.one_of(
    st.sampled_from(HOSTILE_SCALARS),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x9F), max_size=10),
    st.dates(),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
hostile_values = st.one_of(st.sampled_from(HOSTILE_VALUES), values,
                           st.integers(min_value=2, max_value=1200).map(Deep),
                           st.integers(min_value=2, max_value=1200).map(lambda depth: Deep(depth, table=True)))
keys = st.one_of(st.sampled_from(SECTIONS), st.text(max_size=12), st.sampled_from(("", "\x00", "a.b", "x" * 300)))


# --- documents -------------------------------------------------------------------------------

def paths(document: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every table and every value of `document`, as key paths."""
    found = []
    for key, value in document.items():
        found.append((*prefix, key))
        if isinstance(value, dict):
            found += paths(value, (*prefix, key))
    return found


DEFAULT_PATHS = paths(DEFAULT)


def replaced(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of `document` with the value at `path` set (None: removed), parents made as needed."""
    head, rest = path[0], path[1:]
    copy = dict(document)
    child = copy.get(head) if isinstance(copy.get(head), dict) else {}
    if rest:
        copy[head] = replaced(child, rest, value)
    elif value is None:
        copy.pop(head, None)
    else:
        copy[head] = value
    return copy


@st.composite
def mutated_defaults(draw) -> dict[str, Any]:
    """The default config with one to three of its tables or fields replaced, removed, or given an
    unknown neighbour."""
    document = DEFAULT
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(DEFAULT_PATHS))
        action = draw(st.sampled_from(("replace", "replace", "remove", "add")))
        if action == "replace":
            document = replaced(document, path, draw(hostile_values))
        elif action == "remove":
            document = replaced(document, path, None)
        else:
            document = replaced(document, (*path[:-1], draw(keys)), draw(hostile_values))
    return document


random_documents = st.dictionaries(keys, st.one_of(hostile_values, st.dictionaries(keys, hostile_values, max_size=4)),
                                   max_size=5)


@st.composite
def mangled_texts(draw) -> str:
    """The default config's text with a few characters inserted, deleted or overwritten."""
    text = default_spec_text()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        cut = draw(st.integers(min_value=0, max_value=3))
        text = text[:at] + draw(st.text(max_size=3)) + text[at + cut:]
    return text


config_texts = st.one_of(mutated_defaults().map(to_toml), mutated_defaults().map(to_toml),
                         random_documents.map(to_toml), mangled_texts(), st.text(max_size=200))


# --- the verdict on one config ---------------------------------------------------------------

def names_field_or_file(message: str, config: Path) -> bool:
    """The error starts with the config file, a section of the spec, or the unknown key it reports."""
    first = message.split(": ", 1)[0].split(".", 1)[0].split("[", 1)[0]
    return message.startswith(("config", str(config))) or first in SECTIONS or "unknown field" in message


def classify(code: int | None, stderr: str, config: Path) -> str:
    """VALID, REJECTED (exit 2 with one line naming what is wrong), or OTHER."""
    lines = stderr.splitlines()
    if code == 0 and len(lines) == 1 and lines[0].endswith(")") and ": valid (spec digest " in lines[0]:
        return VALID
    if code == 2 and len(lines) == 1 and lines[0].startswith(ERROR_PREFIX) \
            and names_field_or_file(lines[0][len(ERROR_PREFIX):], config):
        return REJECTED
    return TRACEBACK if "Traceback (most recent call last)" in stderr else OTHER


def padded_rule_config(padding: int) -> str:
    """A valid config whose one policy rule has `padding` spaces on each side."""
    return f'[policy]\nrules = ["{" " * padding}mia.ulira.auc <= 0.55{" " * padding}"]\n[unlearners.identity]\n'


def outcome(text: str, config: Path) -> tuple[str, str]:
    """(kind, stderr) of `salun validate` on `text`, run in this process."""
    config.write_text(text, encoding="utf-8")
    return validated(config)


def validated(config: Path) -> tuple[str, str]:
    """(kind, stderr) of `salun validate` on the file `config`, run in this process."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main(["validate", str(config)])
    except BaseException:  # noqa: BLE001 - any escape is what the fuzzing looks for
        return TRACEBACK, stderr.getvalue() + traceback.format_exc()
    return classify(code, stderr.getvalue(), config), stderr.getvalue()
