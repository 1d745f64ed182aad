"""Bar charts drawn on the server as inline SVG: no script, so the strict CSP holds.

`stacked_bars` turns buckets x series of numbers into rectangles, axis ticks and a data
table; `partials/_bar_chart.html` draws them, with a <title> tooltip per bar and the same
numbers as a table for screen readers. Negative values (credit memos) stack below zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 78, 8, 10, 28


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # css suffix
    label: str  # series label
    bucket: str
    value: Decimal


@dataclass
class Chart:
    """What the partial draws; `money` says whether values are amounts (in `currency`)."""

    title: str
    caption: str
    buckets: list[str]
    series: list[tuple[str, str]]  # (key, label)
    values: dict[tuple[str, str], Decimal]
    money: bool = True
    currency: str | None = None
    bucket_name: str = "Month"
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, Decimal]] = field(default_factory=list)  # (y, value)
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x centre, bucket)
    zero: float = 0.0
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def empty(self) -> bool:
        return not any(self.values.values())

    @property
    def used_series(self) -> list[tuple[str, str]]:
        """The series that have a value somewhere (legend and table columns)."""
        used = {key for (_bucket, key), value in self.values.items() if value}
        return [(key, label) for key, label in self.series if key in used]

    def value(self, bucket: str, key: str) -> Decimal:
        return self.values.get((bucket, key), Decimal(0))


def stacked_bars(title: str, caption: str, buckets: Sequence[str],
                 series: Sequence[tuple[str, str]], values: dict[tuple[str, str], Decimal],
                 *, money: bool = True, currency: str | None = None,
                 bucket_name: str = "Month") -> Chart:
    """Lay out one stacked bar per bucket; positives stack up from zero, negatives down."""
    chart = Chart(title, caption, list(buckets), list(series), dict(values), money, currency,
                  bucket_name)
    top = max([sum((v for (b, _k), v in values.items() if b == bucket and v > 0), Decimal(0))
               for bucket in buckets] or [Decimal(0)])
    bottom = min([sum((v for (b, _k), v in values.items() if b == bucket and v < 0),
                      Decimal(0)) for bucket in buckets] or [Decimal(0)])
    span = (top - bottom) or Decimal(1)
    plot_h = HEIGHT - TOP - BOTTOM
    scale = Decimal(plot_h) / span
    chart.zero = round(float(TOP + top * scale), 2)
    chart.ticks = [(round(float(TOP + (top - v) * scale), 2), v) for v in
                   sorted({top, Decimal(0), bottom, (top / 2).quantize(Decimal("0.01"))
                           if top else Decimal(0)}, reverse=True)]
    slot = (WIDTH - LEFT - RIGHT) / max(len(buckets), 1)
    bar_w = max(slot * 0.7, 1.0)
    every = -(-len(buckets) // 12)  # at most about 12 axis labels, so they never overlap
    for index, bucket in enumerate(buckets):
        x = LEFT + index * slot + (slot - bar_w) / 2
        if index % every == 0:
            chart.labels.append((round(x + bar_w / 2, 2), bucket))
        up = down = chart.zero
        for key, label in series:
            value = chart.value(bucket, key)
            if not value:
                continue
            size = float(abs(value) * scale)
            if value > 0:
                up -= size
                y = up
            else:
                y = down
                down += size
            chart.bars.append(Bar(round(x, 2), round(y, 2), round(bar_w, 2),
                                  round(max(size, 0.5), 2), key, label, bucket, value))
    return chart
