"""The dashboard's two spans: today and the current period, in the utility's time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy.orm import Session

from ivr.operator.labels import period_words
from storage.ledger import period_of
from storage.review_stats import Figures, figures


@dataclass(frozen=True)
class Span:
    """A named stretch of local days and what happened in it."""

    title: str
    first: date
    last: date
    figures: Figures


def _utc(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period_days(period: str, zone: tzinfo, window: tuple[int, int]) -> tuple[date, date]:
    """The first and last local day whose readings count for `period` (the ledger's rule)."""
    year, month = map(int, period.split("-"))
    start = date(year, month, 1) - timedelta(days=40)
    days = [start + timedelta(days=i) for i in range(75)]
    noon = time(12)
    inside = [d for d in days if period_of(datetime.combine(d, noon, zone), zone, window) == period]
    return inside[0], inside[-1]


def dashboard(
    session: Session, now: datetime, zone: tzinfo, window: tuple[int, int]
) -> tuple[str, list[Span]]:
    """The current period and the figures for today and for that period."""
    today = now.astimezone(zone).date()
    period = period_of(now, zone, window)
    first, last = period_days(period, zone, window)
    day_after = today + timedelta(days=1)
    spans = [
        Span("Сегодня", today, today, figures(session, _utc(today, zone), _utc(day_after, zone))),
        Span(
            f"Период: {period_words(period)}",
            first,
            last,
            figures(
                session, _utc(first, zone), _utc(last + timedelta(days=1), zone), period=period
            ),
        ),
    ]
    return period, spans
