"""Validation of plugin keyword arguments against the plugin's own signature.

An unlearner's hyperparameters and a model's options are the keyword arguments of its
`__init__` (or factory) with their defaults; the spec validates a config's values against
that signature, so a typo or a wrong type names its field before anything runs.
"""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import pydantic
from pydantic import BeforeValidator, ConfigDict

from audit.errors import SalunInputError


def _list_to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _accepts_lists(annotation: Any) -> Any:
    """TOML gives arrays as lists; let a tuple-annotated field take them."""
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


def _params_model(fn: Callable[..., Any], skip: int) -> type[pydantic.BaseModel]:
    hints = typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn, include_extras=True)
    fields: dict[str, Any] = {}
    for name, p in keyword_parameters(fn, skip).items():
        if name in hints:
            annotation = hints[name]
        elif p.default is not inspect.Parameter.empty and p.default is not None:
            annotation = type(p.default)
        else:
            annotation = Any
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[name] = (_accepts_lists(annotation), default)
    config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    return pydantic.create_model(f"{getattr(fn, '__name__', 'Plugin')}Params", __config__=config, **fields)


def validate_keywords(
    fn: Callable[..., Any], given: Mapping[str, Any], path: str, skip: int = 0
) -> dict[str, Any]:
    """`given` checked against `fn`'s keyword parameters, with every default filled in."""
    model = _params_model(fn, skip)
    try:
        validated = model.model_validate(dict(given))
    except pydantic.ValidationError as error:
        raise SalunInputError("\n".join(describe_errors(error, path, model))) from None
    return {name: getattr(validated, name) for name in model.model_fields}


def describe_errors(
    error: pydantic.ValidationError, prefix: str = "", model: type[pydantic.BaseModel] | None = None
) -> list[str]:
    """One line per problem, each starting with the dotted path of the field."""
    lines = []
    for item in error.errors(include_url=False):
        location = [str(part) for part in item["loc"] if not str(part).startswith("function-")]
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
            message += f" (got {item['input']!r})"
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        lines.append(f"{path}: {message}" if path else message)
    return lines


def _known_fields(model: type[pydantic.BaseModel], location: list[str]) -> list[str]:
    current: Any = model
    for part in location:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return sorted(getattr(current, "model_fields", {}))
