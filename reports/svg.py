"""Charts as inline SVG, written directly: axes on linear or log scales with round ticks, lines,
bands, filled steps, vertical marks and a legend placed in the corner that covers the least
data. Text stays text, escaped; nothing carries an id, a date or a script, so a chart renders
the same every time and any number of them share a page.

A chart is drawn in a box of user units (360 × 270 unless given; the page scales it to its
width), its legend inside the axes or in a column of its own to their right; numbers are
written to two decimals of a unit, so the same data always gives the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 360, 270
LEFT, RIGHT, TOP, BOTTOM = 54, 10, 26, 40  # margins around the plotting area
FONT, FONT_SIZE, TITLE_SIZE = 'font-family="sans-serif"', 10, 12
DASHES = {"-": None, "--": "5 3", ":": "1.5 2", "-.": "6 2 1.5 2"}
LEGEND_ROW, LEGEND_CHAR = 13, 5.6  # a legend line's height, and the width of one of its characters
MARKERS = ("circle", "square", "diamond", "triangle")


def _n(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _round_step(span: float, count: int = 5) -> float:
    """The smallest 1, 2 or 5 times a power of ten that cuts `span` into at most `count` + 2 steps."""
    power = 10 ** math.floor(math.log10(span / count))
    return next(m * power for m in (1, 2, 5, 10) if span / (m * power) <= count + 2)


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    text = f"{value:.{decimals}f}"
    return text.replace("-", "−") if float(text) != 0 else "0"


def _superscript(power: int) -> str:
    return "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(d)] if d.isdigit() else "⁻" for d in str(power))


@dataclass
class Scale:
    """A data interval onto a pixel interval; `log` maps log10 of the data."""

    low: float
    high: float
    start: float
    end: float
    log: bool = False

    @classmethod
    def fitted(cls, values: Sequence[float], start: float, end: float, log: bool = False,
               limits: tuple[float, float] | None = None) -> "Scale":
        if limits is not None:
            low, high = limits
        elif log:
            positive = [v for v in values if v > 0]
            low = 10 ** math.floor(math.log10(min(positive)))
            high = 10 ** math.ceil(math.log10(max(positive)))
            high = high * 10 if high <= low else high
        else:
            low, high = min(values), max(values)
            pad = (high - low) * 0.05 or max(abs(low) * 0.05, 0.5)
            low, high = low - pad, high + pad
        return cls(low, high, start, end, log)

    def _unit(self, value: float) -> float:
        if self.log:
            return (math.log10(value) - math.log10(self.low)) / (math.log10(self.high) - math.log10(self.low))
        return (value - self.low) / (self.high - self.low)

    def __call__(self, value: float) -> float:
        unit = min(max(self._unit(value), -0.02), 1.02)  # nothing leaves the axes by more than a hair
        return self.start + unit * (self.end - self.start)

    def ticks(self) -> list[tuple[float, str]]:
        if self.log:
            first, last = math.ceil(math.log10(self.low) - 1e-9), math.floor(math.log10(self.high) + 1e-9)
            return [(10.0 ** p, "1" if p == 0 else f"10{_superscript(p)}") for p in range(first, last + 1)]
        step = _round_step(self.high - self.low)
        first = math.ceil(self.low / step - 1e-9)
        values = [k * step for k in range(first, math.floor(self.high / step + 1e-9) + 1)]
        return [(v, _tick_label(v, step)) for v in values]


@dataclass
class _Entry:
    label: str
    colour: str
    kind: str  # "line" (a dash key of DASHES), "patch" or "point"
    opacity: float = 1.0
    marker: str = "circle"


def _marker(shape: str, x: float, y: float, colour: str, size: float = 3.0) -> str:
    """A filled marker of one of MARKERS centred on (x, y)."""
    if shape == "square":
        return f'<rect x="{_n(x - size)}" y="{_n(y - size)}" width="{_n(2 * size)}" height="{_n(2 * size)}" fill="{colour}"/>'
    if shape in ("diamond", "triangle"):
        s = size * 1.3
        corners = ((x, y - s), (x + s, y), (x, y + s), (x - s, y)) if shape == "diamond" else \
            ((x, y - s), (x + s, y + s * 0.8), (x - s, y + s * 0.8))
        return f'<polygon points="{" ".join(f"{_n(a)},{_n(b)}" for a, b in corners)}" fill="{colour}"/>'
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(size)}" fill="{colour}"/>'


@dataclass
class Chart:
    """One set of axes in a `width` × `height` box; add marks, then `svg()`. `legend_labels`,
    given before `axes`, puts the legend in a column to the right of the axes, wide enough for them."""

    title: str
    xlabel: str
    ylabel: str
    width: float = WIDTH
    height: float = HEIGHT
    legend_labels: Sequence[str] = ()
    marks: list[str] = field(default_factory=list)
    legend: list[_Entry] = field(default_factory=list)
    drawn: list[list[tuple[float, float]]] = field(default_factory=list)  # each mark's pixels, for the legend
    x: Scale | None = None
    y: Scale | None = None

    @property
    def _column(self) -> float:
        """The width of the legend's own column, 0 when the legend sits inside the axes."""
        return 8 + _legend_width(self.legend_labels) if self.legend_labels else 0.0

    @property
    def right(self) -> float:
        return self.width - RIGHT - self._column

    @property
    def bottom(self) -> float:
        return self.height - BOTTOM

    def axes(self, xs: Sequence[float], ys: Sequence[float], xlog: bool = False, ylog: bool = False,
             xlimits: tuple[float, float] | None = None, ylimits: tuple[float, float] | None = None) -> None:
        self.x = Scale.fitted(xs, LEFT, self.right, xlog, xlimits)
        self.y = Scale.fitted(ys, self.bottom, TOP, ylog, ylimits)

    def _path(self, xs: Sequence[float], ys: Sequence[float]) -> str:
        pixels = [(self.x(a), self.y(b)) for a, b in zip(xs, ys)]
        self.drawn.append(pixels)
        return " ".join(("M" if i == 0 else "L") + f"{_n(px)} {_n(py)}" for i, (px, py) in enumerate(pixels))

    def line(self, xs: Sequence[float], ys: Sequence[float], colour: str, label: str | None = None,
             dash: str = "-", width: float = 1.3, markers: bool = False) -> None:
        if not xs:
            return
        pattern = f' stroke-dasharray="{DASHES[dash]}"' if DASHES[dash] else ""
        self.marks.append(f'<path d="{self._path(xs, ys)}" fill="none" stroke="{colour}" '
                          f'stroke-width="{_n(width)}"{pattern}/>')
        if markers:
            self.marks.extend(f'<circle cx="{_n(self.x(a))}" cy="{_n(self.y(b))}" r="2" fill="{colour}"/>'
                              for a, b in zip(xs, ys))
        if label:
            self.legend.append(_Entry(label, colour, dash))

    def band(self, xs: Sequence[float], low: Sequence[float], high: Sequence[float], colour: str,
             opacity: float = 0.15) -> None:
        if not xs:
            return
        outline = self._path([*xs, *reversed(xs)], [*high, *reversed(low)])
        self.marks.append(f'<path d="{outline} Z" fill="{colour}" fill-opacity="{opacity}" stroke="none"/>')

    def steps(self, heights: Sequence[float], edges: Sequence[float], colour: str, label: str | None = None,
              opacity: float = 0.45) -> None:
        """Filled steps: heights[i] over [edges[i], edges[i + 1]], down to zero at both ends."""
        xs = [edges[0]] + [e for pair in zip(edges, edges[1:]) for e in pair] + [edges[-1]]
        ys = [0.0] + [h for h in heights for _ in (0, 1)] + [0.0]
        self.marks.append(f'<path d="{self._path(xs, ys)} Z" fill="{colour}" fill-opacity="{opacity}" '
                          f'stroke="{colour}" stroke-width="0.6"/>')
        for low, high, height in zip(edges, edges[1:], heights):  # the filled area counts as covered
            middle = self.x((low + high) / 2) if not self.x.log else self.x(math.sqrt(low * high))
            self.drawn.append([(middle, self.y(0.0)), (middle, self.y(height))])
        if label:
            self.legend.append(_Entry(label, colour, "patch", opacity))

    def vline(self, at: float, colour: str, label: str | None = None, dash: str = "--") -> None:
        self.line([at, at], [self.y.low, self.y.high], colour, label, dash, width=1.0)

    def hline(self, at: float, colour: str, label: str | None = None, dash: str = "--") -> None:
        self.line([self.x.low, self.x.high], [at, at], colour, label, dash, width=1.0)

    def point(self, x: float, y: float, colour: str, label: str | None = None, marker: str = "circle",
              xerr: tuple[float, float] | None = None, yerr: tuple[float, float] | None = None) -> None:
        """A marker at (x, y) with error bars over the intervals `xerr` and `yerr` (low, high)."""
        px, py = self.x(x), self.y(y)
        bars = [((self.x(xerr[0]), py), (self.x(xerr[1]), py))] if xerr else []
        bars += [((px, self.y(yerr[0])), (px, self.y(yerr[1])))] if yerr else []
        for (x0, y0), (x1, y1) in bars:
            cap = [(x0, y0 - 3, x0, y0 + 3), (x1, y1 - 3, x1, y1 + 3)] if y0 == y1 else \
                [(x0 - 3, y0, x0 + 3, y0), (x1 - 3, y1, x1 + 3, y1)]
            self.marks.extend(f'<line x1="{_n(a)}" y1="{_n(b)}" x2="{_n(c)}" y2="{_n(d)}" stroke="{colour}" '
                              'stroke-width="0.9"/>' for a, b, c, d in [(x0, y0, x1, y1), *cap])
            self.drawn.append([(x0, y0), (x1, y1)])
        self.marks.append(_marker(marker, px, py, colour))
        self.drawn.append([(px, py)])
        if label:
            self.legend.append(_Entry(label, colour, "point", marker=marker))

    def _frame(self) -> list[str]:
        left, right, bottom, top = LEFT, self.right, self.bottom, TOP
        parts = [f'<rect x="{left}" y="{top}" width="{_n(right - left)}" height="{_n(bottom - top)}" fill="none" '
                 'stroke="#333" stroke-width="0.8"/>']
        for value, text in self.x.ticks():
            px = _n(self.x(value))
            parts.append(f'<line x1="{px}" y1="{_n(bottom)}" x2="{px}" y2="{_n(bottom + 3)}" stroke="#333" '
                         f'stroke-width="0.8"/><text x="{px}" y="{_n(bottom + 13)}" text-anchor="middle">'
                         f'{escape(text)}</text>')
        for value, text in self.y.ticks():
            py = _n(self.y(value))
            parts.append(f'<line x1="{left - 3}" y1="{py}" x2="{left}" y2="{py}" stroke="#333" stroke-width="0.8"/>'
                         f'<text x="{left - 5}" y="{py}" dy="3.5" text-anchor="end">{escape(text)}</text>')
        middle_x, middle_y = (left + right) / 2, (top + bottom) / 2
        parts.append(f'<text x="{_n(middle_x)}" y="{_n(self.height - 8)}" text-anchor="middle">{escape(self.xlabel)}'
                     f'</text><text transform="translate(12 {_n(middle_y)}) rotate(-90)" text-anchor="middle">'
                     f'{escape(self.ylabel)}</text><text x="{_n(self.width / 2)}" y="16" text-anchor="middle" '
                     f'font-size="{TITLE_SIZE}">{escape(self.title)}</text>')
        return parts

    def _legend(self, corners: Sequence[str]) -> list[str]:
        if not self.legend:
            return []
        width = _legend_width([e.label for e in self.legend])
        height = 6 + LEGEND_ROW * len(self.legend)
        x, y = (self.right + 8, TOP) if self.legend_labels else self._least_covered(width, height, corners)
        parts = [f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{height}" fill="#fff" '
                 'fill-opacity="0.85" stroke="#ccc" stroke-width="0.6"/>']
        for row, entry in enumerate(self.legend):
            middle = y + 3 + LEGEND_ROW * row + LEGEND_ROW / 2
            parts.append(_legend_key(entry, x, middle))
            parts.append(f'<text x="{_n(x + 22)}" y="{_n(middle)}" dy="3.5">{escape(entry.label)}</text>')
        return parts

    def _least_covered(self, width: float, height: float, corners: Sequence[str]) -> tuple[float, float]:
        """The corner (in `corners`' order of preference) whose legend box covers the fewest data pixels."""
        places = {"upper right": (self.right - width - 4, TOP + 4), "upper left": (LEFT + 4, TOP + 4),
                  "lower right": (self.right - width - 4, self.bottom - height - 4),
                  "lower left": (LEFT + 4, self.bottom - height - 4)}

        def covered(corner: str) -> int:
            x, y = places[corner]
            return sum(x <= px <= x + width and y <= py <= y + height for px, py in self._dense_points())

        return places[min(corners, key=lambda corner: (covered(corner), corners.index(corner)))]

    def _dense_points(self) -> list[tuple[float, float]]:
        """Every mark's pixels, with the straight stretches between them filled in every few pixels."""
        dense = []
        for pixels in self.drawn:
            for (x0, y0), (x1, y1) in zip(pixels, pixels[1:]):
                count = max(1, int(math.hypot(x1 - x0, y1 - y0) / 4))
                dense.extend((x0 + (x1 - x0) * k / count, y0 + (y1 - y0) * k / count) for k in range(count))
            dense.extend(pixels[-1:])
        return dense

    def svg(self, legend_corners: Sequence[str] = ("upper right", "upper left", "lower right", "lower left")) -> Markup:
        body = "".join([*self.marks, *self._frame(), *self._legend(legend_corners)])
        return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(self.width)} {_n(self.height)}" '
                      f'role="img" aria-label="{escape(self.title)}" {FONT} font-size="{FONT_SIZE}" fill="#222">'
                      f'{body}</svg>')


def _legend_width(labels: Sequence[str]) -> float:
    return 26 + LEGEND_CHAR * max((len(label) for label in labels), default=0)


def _legend_key(entry: _Entry, x: float, middle: float) -> str:
    """The swatch before a legend entry's text: a patch, a marker or a stretch of the line."""
    if entry.kind == "patch":
        return (f'<rect x="{_n(x + 4)}" y="{_n(middle - 4)}" width="14" height="8" fill="{entry.colour}" '
                f'fill-opacity="{entry.opacity}"/>')
    if entry.kind == "point":
        return _marker(entry.marker, x + 11, middle, entry.colour)
    pattern = f' stroke-dasharray="{DASHES[entry.kind]}"' if DASHES[entry.kind] else ""
    return (f'<line x1="{_n(x + 4)}" y1="{_n(middle)}" x2="{_n(x + 18)}" y2="{_n(middle)}" '
            f'stroke="{entry.colour}" stroke-width="1.3"{pattern}/>')
