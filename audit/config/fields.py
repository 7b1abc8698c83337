"""What every section of an audit spec is built from: the frozen base class and the checked
field types (names, free text, paths, seeds)."""

from __future__ import annotations

import typing
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from audit.core.errors import SalunInputError
from audit.core.params import shown


MAX_NAME = 100            # characters of a registered name or a label
MAX_TEXT = 200            # characters of free text (the audit's name)
MAX_PATH_BYTES = 4096     # PATH_MAX on Linux
MAX_PATH_PART_BYTES = 255  # NAME_MAX: the longest file or folder name most file systems take
MAX_SEED = 2**63 - 1
MAX_CLASS = 1_000_000


def _one_line(text: str, limit: int) -> str:
    if not text:
        raise ValueError("must not be empty")
    if len(text) > limit:
        raise ValueError(f"longer than {limit} characters: {shown(text)}")
    if not text.isprintable():
        raise ValueError(f"holds a control or other unprintable character: {shown(text)}")
    return text


def _name(text: str) -> str:
    return _one_line(text, MAX_NAME)


def _path(text: str) -> str:
    if not text:
        raise ValueError("must not be empty (write \".\" for the config file's folder)")
    if "\0" in text:
        raise ValueError(f"holds a NUL character, which no path can: {shown(text)}")
    if not text.isprintable():
        raise ValueError(f"holds a control or other unprintable character: {shown(text)}")
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_BYTES:
        raise ValueError(f"a path of {len(encoded)} bytes; the most a path may have is {MAX_PATH_BYTES}")
    if any(len(part) > MAX_PATH_PART_BYTES for part in encoded.split(b"/")):
        raise ValueError(f"a file or folder name longer than {MAX_PATH_PART_BYTES} bytes: {shown(text)}")
    return text


Name = Annotated[str, AfterValidator(_name)]                  # a registered plugin, a label, a column
Text = Annotated[str, AfterValidator(lambda text: _one_line(text, MAX_TEXT))]
PathText = Annotated[str, AfterValidator(_path)]              # a file or folder, from the config's folder
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
ClassIndex = Annotated[int, Field(ge=0, le=MAX_CLASS)]
ImageSide = Annotated[int, Field(ge=1, le=16_384)]


def name_at(value: Any, path: str) -> str:
    """`value` checked as a Name in a validator that runs before the field types do."""
    if not isinstance(value, str):
        raise SalunInputError(f"{path}: expected a name, got {shown(value)}")
    try:
        return _name(value)
    except ValueError as error:
        raise SalunInputError(f"{path}: {error}") from None


def _unique(raw: Any) -> Any:
    """A list named twice over means it once: repeats are folded, first occurrence kept."""
    if not isinstance(raw, (list, tuple)):
        return raw
    try:
        return tuple(dict.fromkeys(raw))
    except TypeError:  # an unhashable entry: the field's type reports it
        return raw


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _lists_as_tuples(cls, raw: Any, info: ValidationInfo) -> Any:
        """TOML has lists; the frozen sections hold tuples."""
        field = cls.model_fields.get(info.field_name)
        if isinstance(raw, list) and field is not None and _is_tuple(field.annotation):
            return tuple(raw)
        return raw


def _is_tuple(annotation: Any) -> bool:
    """tuple[...], or tuple[...] | None."""
    if typing.get_origin(annotation) is tuple:
        return True
    return any(typing.get_origin(arg) is tuple for arg in typing.get_args(annotation))
