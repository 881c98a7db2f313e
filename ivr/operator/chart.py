"""Monthly consumption of a meter as bars for a small server-rendered SVG chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from storage.models import Reading

WIDTH, HEIGHT, PAD = 360, 120, 16


@dataclass(frozen=True)
class Bar:
    """One period's consumption, placed on the chart."""

    period: str
    consumption: Decimal
    flagged: bool
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    """Bars plus the baseline, in SVG user units."""

    bars: list[Bar]
    width: int
    height: int
    baseline: float
    top: Decimal


def _months_between(a: str, b: str) -> int:
    (ya, ma), (yb, mb) = (map(int, a.split("-")), map(int, b.split("-")))
    return max(1, (yb - ya) * 12 + (mb - ma))


def monthly(readings: Sequence[Reading], last: int = 12) -> list[tuple[str, Decimal, bool]]:
    """(period, consumption per month, flagged) from readings of any order and status.

    Accepted, not replaced readings form the history; a flagged one pending review is
    compared with the accepted reading before it and marked.
    """
    ordered = sorted(readings, key=lambda r: (r.taken_at, r.id))
    points: list[tuple[str, Decimal, bool]] = []
    prev: Reading | None = None
    for r in ordered:
        if r.replaced_by_id is not None or r.status == "rejected":
            continue
        flagged = r.status == "flagged"
        if prev is not None and r.period > prev.period:
            per_month = (r.value - prev.value) / _months_between(prev.period, r.period)
            points.append((r.period, per_month.quantize(Decimal("0.001")), flagged))
        if not flagged:
            prev = r
    return points[-last:]


def chart(readings: Sequence[Reading]) -> Chart | None:
    """A bar chart of monthly consumption, or None with fewer than two readings."""
    points = monthly(readings)
    if not points:
        return None
    top = max([abs(c) for _, c, _ in points] + [Decimal("0.001")])
    has_negative = any(c < 0 for _, c, _ in points)
    baseline = (HEIGHT - PAD + 14) / 2 if has_negative else HEIGHT - PAD
    scale = float(baseline - 14) / float(top)  # room above the bars for their labels
    step = (WIDTH - 2 * PAD) / max(len(points), 6)
    bars = []
    for i, (period, consumption, flagged) in enumerate(points):
        h = abs(float(consumption)) * scale
        y = baseline - h if consumption >= 0 else baseline
        bars.append(Bar(period, consumption, flagged, PAD + i * step + 2, y, step - 4, max(h, 1)))
    return Chart(bars=bars, width=WIDTH, height=HEIGHT, baseline=baseline, top=top)
