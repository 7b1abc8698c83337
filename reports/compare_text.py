"""`salun compare`'s output, as plain text or as Markdown (a pull-request comment): the audit's
verdict old -> new, each method that changed with the rules whose numbers moved, and a legend
saying how a change is judged beyond noise."""

from __future__ import annotations

from reports.compare import INTERVALS, PAIRED, Comparison, MethodChange, Number, RuleChange
from reports.numbers import MISSING, is_number, number
from reports.text import markdown_text as md

LEGEND = ("A change is beyond noise when, for a rule on a metric (metrics.X, or the retrain-equivalence "
          "difference of X), the 95 % Student-t interval of the mean per-seed change, the seeds paired between "
          "the audits, excludes 0 (units: the seeds both share); for a rule on another number with a 95 % interval, "
          "when the two intervals are disjoint (units: its models and examples); a number without an interval is "
          "shown, not judged. A method got worse when its verdict did (PASS -> INCONCLUSIVE or FAIL, "
          "INCONCLUSIVE -> FAIL) or a number moved beyond noise towards failing its rule (up for <=, down for >=, "
          "away from 0 for an equivalence difference).")


def _value(x: float | None) -> str:
    return number(x, digits=4) if is_number(x) else MISSING


def _signed(x: float | None) -> str:
    return f"{x:+.4f}" if is_number(x) else MISSING


def _number(n: Number) -> str:
    text = _value(n.value)
    if n.low is not None and n.high is not None:
        level = f"{100 * n.level:g} % " if n.level is not None else ""
        text += f" ({level}[{_value(n.low)}, {_value(n.high)}])"
    return text


def _judgement(r: RuleChange) -> str:
    """The change and what it amounts to: '+0.0185 [+0.0086, +0.0285] over 3 paired seeds: beyond noise, worse'."""
    if r.delta is None:
        return "no number in one audit"
    text = _signed(r.delta)
    if r.test == PAIRED:
        text += f" [{_signed(r.delta_low)}, {_signed(r.delta_high)}] over {r.units}"
    elif r.test == INTERVALS:
        text += f", 95 % intervals {'disjoint' if r.beyond_noise else 'overlap'}" + (f" ({r.units})" if r.units else "")
    else:
        return text + ": no interval, not judged"
    if not r.beyond_noise:
        return text + ": within noise"
    return text + ": beyond noise" + (", worse" if r.worse else ", better" if r.better else "")


def _status(m: MethodChange) -> str:
    return m.status + (", worse" if m.worse else "")


def _headline(c: Comparison) -> list[str]:
    worse = [m.method for m in c.methods if m.worse]
    lines = [f"audit verdict: {c.old_verdict} -> {c.new_verdict}; "
             + (f"{len(worse)} method(s) got worse: {', '.join(worse)}" if worse else "no method got worse")]
    old_seeds, new_seeds = c.seeds
    if old_seeds == new_seeds:
        lines.append(f"seeds: the same {len(new_seeds)} in both")
    else:
        shared = sorted(set(old_seeds) & set(new_seeds))
        lines.append(f"seeds: {len(old_seeds)} in {c.old_name}, {len(new_seeds)} in {c.new_name}, {len(shared)} shared")
    if c.differing:
        lines.append(f"compared anyway (--force), though they audit different requests: {', '.join(c.differing)} differ")
    return lines


def _grouped(c: Comparison, status: str) -> list[MethodChange]:
    return [m for m in c.methods if m.status == status]


def render_text(c: Comparison) -> str:
    lines = [f"salun compare: {c.old_name} -> {c.new_name}", *_headline(c), ""]
    for m in [m for m in c.methods if m.status in ("changed", "within noise")]:
        lines.append(f"{m.method}: {m.old_verdict} -> {m.new_verdict} ({_status(m)})")
        for r in (r for r in m.rules if r.changed):
            lines += [f"  {r.rule}: {r.old_status} -> {r.new_status}",
                      f"    {_number(r.old)} -> {_number(r.new)}",
                      f"    change {_judgement(r)}"]
        lines += [f"  rule added: {rule}" for rule in m.added_rules]
        lines += [f"  rule removed: {rule}" for rule in m.removed_rules]
    for status in ("unchanged", "added", "removed"):
        group = _grouped(c, status)
        if group:
            verdicts = [m.new_verdict if status == "added" else m.old_verdict for m in group]
            shown = [m.method if status == "unchanged" else f"{m.method} ({v})" for m, v in zip(group, verdicts)]
            lines.append(f"{status}: {', '.join(shown)}")
    return "\n".join([*lines, "", LEGEND]) + "\n"


def render_markdown(c: Comparison) -> str:
    lines = [f"## salun compare: {md(c.old_name)} → {md(c.new_name)}", "",
             *(md(line).replace("-&gt;", "→") + "  " for line in _headline(c)), "", "| method | verdict | change |", "|---|---|---|"]
    for m in c.methods:
        verdict = f"{md(m.old_verdict or '–')} → {md(m.new_verdict or '–')}"
        lines.append(f"| {md(m.method)} | {verdict} | {'**' + _status(m) + '**' if m.worse else _status(m)} |")
    moved = [r for m in c.methods for r in m.rules if r.changed]
    if moved:
        lines += ["", "| method | rule | verdict | old | new | change |", "|---|---|---|---|---|---|"]
        lines += [f"| {md(r.method)} | {md(r.rule)} | {md(r.old_status)} → {md(r.new_status)} | {md(_number(r.old))} "
                  f"| {md(_number(r.new))} | {md(_judgement(r))} |" for r in moved]
    return "\n".join([*lines, "", md(LEGEND).replace("-&gt;", "→")]) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown}
