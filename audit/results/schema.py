"""results.json (schema `salun.results/1`) as typed models: the envelope and the sections the
reports and `salun verify` read, each field typed as every audit writes it. A section's
internals that no report reads by name (attack curves, per-example ε, a plugin's extra keys)
are kept as they are (`extra="allow"`). Numbers may be null, nan or inf: a degenerate audit
still has its results shown. Loads without torch, so `salun report` never imports it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

SCHEMA = "salun.results/1"

Verdict = Literal["PASS", "FAIL", "INCONCLUSIVE"]
Number = float | None  # strict: an int is a number, a string or a boolean is not


class Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Summary(Part):
    """One quantity over seeds (audit.stats.basics.summarize)."""

    mean: Number = None
    std: Number = None
    ci95: list[Number] | None = None
    n: StrictInt | None = None
    per_seed: list[Number] = []


class Failure(Part):
    seed: StrictInt | None = None
    reason: StrictStr | None = None


class Row(Part):
    """A population's or a method's metrics: every key but `failures` is a Summary."""

    __pydantic_extra__: dict[str, Summary] = Field(init=False)
    failures: list[Failure] = []


class Manifest(Part):
    spec_digest: StrictStr
    data_digest: StrictStr | None = None
    split_digest: StrictStr | None = None
    code_version: dict[str, StrictStr] = {}
    environment: dict[str, Any] = {}
    plugins: list[dict[str, Any]] = []
    seeds: list[StrictInt] = []
    command: StrictStr | None = None


class Scope(Part):
    task: StrictStr | None = None  # absent: classification
    dataset: StrictStr
    model: StrictStr | None = None
    methods: list[StrictStr] = []
    models_per_population: StrictInt | None = None
    num_classes: StrictInt | None = None
    forget_kind: StrictStr | None = None
    forget_classes: list[StrictInt] = []
    forget_size: StrictInt | None = None


class PerMethod(Part):
    """A section with one entry per method under `methods` (mia, relearn, backdoor)."""

    methods: dict[str, dict[str, Any]] = {}


class Relearn(PerMethod):
    steps: list[StrictInt] = []


class Generation(Part):
    samples_per_class: StrictInt
    grids: dict[str, Any] = {}


class Probe(Part):
    id: StrictStr
    version: StrictStr
    method: StrictStr | None = None
    verdict: Literal["PASS", "FAIL", "INCONCLUSIVE", "REPORTED"]  # REPORTED: no rule reads it


class Policy(Part):
    rules: list[StrictStr] = []
    default: StrictBool = False


class RuleVerdict(Part):
    method: StrictStr
    rule: StrictStr
    verdict: Verdict
    reason: StrictStr | None = None
    interval: list[Number] | None = None


class MethodVerdict(Part):
    verdict: Verdict
    control: StrictStr | None = None
    expected: Verdict | None = None
    control_problem: StrictStr | None = None


class MethodNote(Part):
    """One entry of the report's methods section: a probe's assumptions and resolution."""

    name: StrictStr


class Results(Part):
    """The whole file; the fields in the order an audit writes them. `spec` is the resolved
    config as written (its model, audit.config.spec, needs the plugin registries)."""

    schema_: Literal["salun.results/1"] = Field(alias="schema")
    salun_version: StrictStr | None = None
    created: StrictStr | None = None
    manifest: Manifest
    spec: dict[str, Any]
    scope: Scope
    populations: dict[str, Row]
    metrics: dict[str, Row]
    mia: PerMethod | None = None
    equivalence: dict[str, dict[str, Any]] | None = None
    relearn: Relearn | None = None
    backdoor: PerMethod | None = None
    generation: Generation | None = None
    probes: list[Probe] | None = None
    policy: Policy | None = None
    verdicts: list[RuleVerdict]
    method_verdicts: dict[str, MethodVerdict]
    verdict: Verdict
    verdict_reason: StrictStr | None = None
    method: list[MethodNote] | None = None
    limitations: list[StrictStr] | None = None


JSON_KINDS = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
              float: "a number", type(None): "null"}
EXPECTED = {"dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
            "list_type": "a list", "string_type": "a string", "bool_type": "a boolean", "int_type": "an integer",
            "float_type": "a number"}


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a path into the file: metrics.finetune.UA.mean, verdicts[3].verdict."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def problem(error: ValidationError) -> str:
    """The first thing wrong in a results.json, as one line naming the section and key."""
    first = error.errors()[0]
    where, value = _where(first["loc"]), first["input"]
    if first["type"] == "missing":
        section = "its " if len(first["loc"]) == 1 else ""
        return f"results.json lacks {section}'{where}'{' section' if section else ''}; rerun the audit"
    if first["type"] == "literal_error":
        return f"results.json's '{where}' is {value!r}, not {first['ctx']['expected']}"
    kind = JSON_KINDS.get(type(value), type(value).__name__)
    return f"results.json's '{where}' is {kind}, not {EXPECTED.get(first['type'], first['msg'])}"


def validate(results: dict[str, Any]) -> Results:
    """`results` as the typed model; ValidationError when it does not fit (see `problem`)."""
    return Results.model_validate(results)
