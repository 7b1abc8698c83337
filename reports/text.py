"""User strings (method labels, names, reasons) made safe for each report format, and the one
error a report gives for a results.json it cannot render."""

from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator

from audit.core.errors import SalunInputError

XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MARKDOWN_PUNCTUATION = re.compile(r"([\\`*\[\]|~])")  # code spans, emphasis, links, cells, strike-through
HTML_IN_MARKDOWN = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
MALFORMED = (KeyError, TypeError, AttributeError, ValueError, IndexError)


def xml_safe(value: Any) -> str:
    """`value` as text with every character XML 1.0 cannot hold (NUL, most C0 controls, lone
    surrogates, U+FFFE/U+FFFF) replaced by U+FFFD."""
    return XML_ILLEGAL.sub("\ufffd", str(value))


def markdown_text(value: Any) -> str:
    """`value` as one line of literal Markdown text: line breaks become spaces, the punctuation
    that opens code, emphasis, links or a table cell is backslash-escaped, and HTML's special
    characters are entities, so no label can add a cell, a row, a link or markup."""
    text = " ".join(xml_safe(value).splitlines())
    text = MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
    return "".join(HTML_IN_MARKDOWN.get(c, c) for c in text)


@contextlib.contextmanager
def rendering(results: dict[str, Any], output: str, *missing: type[Exception]) -> Iterator[None]:
    """Turns a results.json that lacks (KeyError, or the `missing` errors of a template engine) or
    garbles what `output` shows into one SalunInputError."""
    try:
        yield
    except (KeyError, *missing) as error:
        raise _unrenderable(results, output, f"lacks what the report shows ({error})") from None
    except MALFORMED as error:
        raise _unrenderable(results, output, f"holds a value the report cannot show ({type(error).__name__}: {error})"
                            ) from None


def _unrenderable(results: dict[str, Any], output: str, what: str) -> SalunInputError:
    first_line = " ".join(what.splitlines())
    return SalunInputError(f"{output}: results.json {first_line}; it was written by another salun version "
                           f"({results.get('salun_version')}) or edited: rerun the audit")
