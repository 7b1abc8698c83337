"""results.json (schema `salun.results/1`) as a file: writing it, reading it back checked, and
comparing two runs. Loads without torch, so the reports and `salun report` never import it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from audit.core.errors import SalunInputError
from audit.core.files import regular_file_problem, write_text_atomic
from audit.results.schema import SCHEMA, problem, validate

TIMING_KEYS = frozenset({"created", "runtime_s", "wall_time_s"})
RUN_KEYS = frozenset({"command"})  # how this run was invoked: not a result


def dumps(results: dict[str, Any]) -> str:
    return json.dumps(results, indent=2, allow_nan=False) + "\n"


def write_results(results: dict[str, Any], path: Path) -> None:
    write_text_atomic(path, dumps(results))


MAX_RESULTS_BYTES = 256 << 20  # a large audit writes a few MB; past this, reading it could exhaust memory


def _results_text(path: Path) -> str:
    problem = regular_file_problem(path)
    if problem is not None:
        raise SalunInputError(f"results file {path} {problem}" if problem != "not found"
                              else f"results file not found: {path}")
    size = path.stat().st_size
    if size > MAX_RESULTS_BYTES:
        raise SalunInputError(f"{path}: not a results.json file ({size >> 20} MiB; salun reads at most "
                              f"{MAX_RESULTS_BYTES >> 20} MiB)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SalunInputError(f"{path}: not a results.json file (not UTF-8 text: {error.reason} at byte "
                              f"{error.start})") from None
    except OSError as error:
        raise SalunInputError(f"results file {path} cannot be read ({error.strerror or error})") from None


def check_results(results: Any, path: Path) -> dict[str, Any]:
    """`results` if it is a results.json object of this schema that fits its model (audit.results.schema)."""
    if not isinstance(results, dict):
        raise SalunInputError(f"{path}: not a results.json file (its JSON is a {type(results).__name__}, "
                              "not an object)")
    if results.get("schema") != SCHEMA:
        raise SalunInputError(f"{path}: expected schema {SCHEMA}, found {results.get('schema')!r}")
    try:
        validate(results)
    except ValidationError as error:
        raise SalunInputError(f"{path}: {problem(error)}") from None
    return results


def load_results(path: Path) -> dict[str, Any]:
    """A results.json file, checked to hold what the reports and `salun verify` read."""
    path = Path(path)
    text = _results_text(path)
    try:
        results = json.loads(text)
    except RecursionError:
        raise SalunInputError(f"{path}: not a results.json file (its JSON is nested too deeply)") from None
    except ValueError as error:  # JSONDecodeError, and integers too long to convert
        raise SalunInputError(f"{path}: not a results.json file ({error})") from None
    return check_results(results, path)


def without_timings(value: Any) -> Any:
    """The results without wall-clock timings, timestamps and the invoking command, for comparing two runs."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS | RUN_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value
