"""Validation of plugin keyword arguments against the plugin's own signature.

An unlearner's hyperparameters and a model's options are the keyword arguments of its
`__init__` (or factory) with their defaults; the spec validates a config's values against
that signature, so a typo or a wrong type names its field before anything runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from audit.core.errors import SalunInputError

# Ranges of common hyperparameters, for plugins to annotate their fields with (the spec
# rejects a value outside them with the field's name). The upper bounds are sanity bounds,
# far beyond any sensible setting, so that a typo cannot start a run that never ends.
MAX_EPOCHS = 10_000
Epochs = Annotated[int, Field(ge=1, le=MAX_EPOCHS)]
Steps = Annotated[int, Field(ge=1, le=10_000_000)]          # optimiser steps or iterations
BatchSize = Annotated[int, Field(ge=1, le=1_000_000)]
Count = Annotated[int, Field(ge=1, le=1_000_000)]           # examples, samples, neighbours
LearningRate = Annotated[float, Field(gt=0, le=100)]
Momentum = Annotated[float, Field(ge=0, lt=1)]
WeightDecay = Annotated[float, Field(ge=0, le=1)]
Probability = Annotated[float, Field(ge=0, le=1)]           # a share, or a mixing weight in [0, 1]
Weight = Annotated[float, Field(ge=0, le=1e6)]              # a non-negative loss weight or step scale
Temperature = Annotated[float, Field(gt=0, le=1000)]

MAX_DEPTH = 32  # nesting of arrays and tables in a value of no declared type

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6
_SHORT.maxlevel = 3
_SHORT.maxlong = 40


def shown(value: Any) -> str:
    """repr(value), cut short: an error message quotes what it got without growing past a line."""
    return _SHORT.repr(value)


def _plain_data(value: Any, depth: int = 0) -> Any:
    """A value of no declared type must still be finite, JSON-like data, as the resolved spec is JSON."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    if isinstance(value, (list, tuple)):
        for item in value:
            _plain_data(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _plain_data(item, depth + 1)
    elif value is not None and not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a number, string, array or table, got {shown(value)}")
    return value


PlainData = Annotated[Any, AfterValidator(_plain_data)]


def _list_to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _accepts_lists(annotation: Any) -> Any:
    """TOML gives arrays as lists; let a tuple-annotated field take them."""
    if typing.get_origin(annotation) is Annotated:
        inner = typing.get_args(annotation)[0]
        return annotation if _accepts_lists(inner) is inner else Annotated[annotation, BeforeValidator(_list_to_tuple)]
    origin = typing.get_origin(annotation)
    if annotation is tuple or origin is tuple:
        return Annotated[annotation, BeforeValidator(_list_to_tuple)]
    if origin in (typing.Union, types.UnionType):
        if any(a is tuple or typing.get_origin(a) is tuple for a in typing.get_args(annotation)):
            return Annotated[annotation, BeforeValidator(_list_to_tuple)]
    return annotation


def keyword_parameters(fn: Callable[..., Any], skip: int = 0) -> dict[str, inspect.Parameter]:
    """The keyword parameters of `fn` after its first `skip` positional ones."""
    signature = inspect.signature(fn)
    params = [
        p
        for p in signature.parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return {p.name: p for p in params[skip:]}


def _annotated(fn: Callable[..., Any]) -> Any:
    """What holds the annotations of `fn`'s keyword parameters. A dataclass's fields, each resolved
    in the module of the class that declares it, as an inherited field's type may be named only there."""
    if dataclasses.is_dataclass(fn):
        return fn
    return fn.__init__ if inspect.isclass(fn) else fn


@functools.lru_cache(maxsize=256)  # building a pydantic model per spec section costs more than validating it
def _params_model(fn: Callable[..., Any], skip: int) -> type[pydantic.BaseModel]:
    hints = typing.get_type_hints(_annotated(fn), include_extras=True)
    fields: dict[str, Any] = {}
    for name, p in keyword_parameters(fn, skip).items():
        if name in hints:
            annotation = PlainData if hints[name] is Any else hints[name]
        elif p.default is not inspect.Parameter.empty and p.default is not None:
            annotation = type(p.default)
        else:
            annotation = PlainData
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[name] = (_accepts_lists(annotation), default)
    config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True, allow_inf_nan=False)
    return pydantic.create_model(f"{getattr(fn, '__name__', 'Plugin')}Params", __config__=config, **fields)


def validate_keywords(
    fn: Callable[..., Any], given: Mapping[str, Any], path: str, skip: int = 0
) -> dict[str, Any]:
    """`given` checked against `fn`'s keyword parameters, with every default filled in."""
    model = _params_model(fn, skip)
    try:
        validated = model.model_validate(dict(given))
    except pydantic.ValidationError as error:
        raise input_error(error, path, model) from None
    return {name: getattr(validated, name) for name in model.model_fields}


def input_error(
    error: pydantic.ValidationError, prefix: str = "", model: type[pydantic.BaseModel] | None = None
) -> SalunInputError:
    """Every problem of `error` on one line, each naming its field."""
    return SalunInputError("; ".join(describe_errors(error, prefix, model)))


def describe_errors(
    error: pydantic.ValidationError, prefix: str = "", model: type[pydantic.BaseModel] | None = None
) -> list[str]:
    """One line per problem, each starting with the dotted path of the field."""
    lines = []
    for item in error.errors(include_url=False):
        location = [_part(part) for part in item["loc"] if not str(part).startswith("function-")]
        location = [part for part in location if not part.startswith(("tuple[", "union["))]
        path = ".".join(([prefix] if prefix else []) + location)
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
            known = _known_fields(model, location[:-1]) if model else []
            close = difflib.get_close_matches(location[-1], known, n=1) if location else []
            if close:
                message += f" (did you mean '{close[0]}'?)"
            elif known:
                message += f"; known: {', '.join(known)}"
        elif item["type"] == "missing":
            message = "required field is missing"
        elif item["type"] not in ("value_error", "assertion_error"):
            message += f" (got {shown(item['input'])})"
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        lines.append(f"{path}: {message}" if path else message)
    return lines


def _part(part: int | str) -> str:
    """One step of a field's path; a key that is no plain name is quoted, so the path stays one line."""
    text = str(part)
    return text if text.isprintable() and len(text) <= 80 else shown(text)


def _known_fields(model: type[pydantic.BaseModel], location: list[str]) -> list[str]:
    current: Any = model
    for part in location:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return sorted(getattr(current, "model_fields", {}))
