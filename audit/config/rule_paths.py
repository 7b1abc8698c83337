"""Which numbers a policy's rules can read, checked when the spec is validated.

Each section of a method's results declares the paths of the numbers it gives the policy as a
shape: a nested table of key names, `None` for a leaf, `*` for a key of any name (a class). A
table holding `decision`, `value` or `mean` is a number itself, as the policy reads it; any other
table is only a way down. A rule whose section is declared must name one of its paths, or the spec
is refused with the closest declared one; a section nobody declares (a plugin's probe that does
not say what it produces) is read as it comes, after the run.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

from audit.core.errors import SalunInputError

Shape = dict[str, Any]  # name -> Shape | None
ANY = "*"
NUMBER_KEYS = ("decision", "value", "mean")  # a table with one of these is read as that number
SUMMARY: Shape = {"mean": None, "std": None, "n": None}  # audit.stats.basics.summarize
_TEST = dict.fromkeys(("alpha", "detectable_margin", "difference", "equivalent", "margin", "n_r", "n_u", "p",
                       "p_lower", "p_upper"))
TOST: Shape = {"decision": None, "welch": {**_TEST, "df": None}, "bootstrap": {**_TEST, "resamples": None}}


def paths(shape: Shape, prefix: str) -> set[str]:
    """The dotted paths of every number in `shape`, under `prefix`."""
    out = set()
    for name, below in shape.items():
        path = f"{prefix}.{name}"
        if below is None or any(key in below for key in NUMBER_KEYS):
            out.add(path)
        if below is not None:
            out |= paths(below, path)
    return out


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(p in (ANY, q) for p, q in zip(pattern, path))


def _shown(pattern: tuple[str, ...], path: tuple[str, ...]) -> str:
    """A declared path as a rule would write it: each wildcard filled with the rule's own key."""
    return ".".join((path[i] if i < len(path) else "<key>") if p == ANY else p for i, p in enumerate(pattern))


def _hint(path: tuple[str, ...], patterns: list[tuple[str, ...]]) -> str:
    """The declared path nearest `path`, changed where it first leaves every declared one, or the
    keys declared there."""
    depth = max(d for d in range(1, len(path) + 1) if any(_matches(p[:d], path[:d]) for p in patterns))
    names = sorted({p[depth] for p in patterns if len(p) > depth and _matches(p[:depth], path[:depth])})
    where = ".".join(path[:depth])
    if not names:
        return f"{where} is a number, with nothing below it"
    listed = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
    if depth == len(path) and len(names) > 1:
        return f"{where} is a table, not a number; it holds {listed}"
    close = difflib.get_close_matches(path[depth], names, n=1) if depth < len(path) else names
    if not close:
        return f"what {where} holds there: {listed}"
    fixed = path[:depth] + (close[0],) + path[depth + 1:]
    candidates = [p for p in patterns if len(p) > depth and _matches(p[:depth + 1], fixed[:depth + 1])]
    dotted = ".".join(fixed)
    best = max(candidates, key=lambda p: (difflib.SequenceMatcher(None, _shown(p, path), dotted).ratio(), -len(p)))
    return f"did you mean {_shown(best, path)!r}?"


def check_rule_paths(rules: Iterable[tuple[str, ...]], declared: dict[str, set[str] | None]) -> None:
    """Each rule's path (in the order of policy.rules) among its section's declared paths; a
    section absent from `declared`, or declared None, is left unchecked."""
    for index, path in enumerate(rules):
        known = declared.get(path[0])
        if known is None:
            continue
        patterns = [tuple(p.split(".")) for p in known]
        if any(_matches(pattern, path) for pattern in patterns):
            continue
        raise SalunInputError(f"policy.rules[{index}]: {'.'.join(path)!r} is not a number this audit produces; "
                              f"{_hint(path, patterns)}")
