"""The review queue's filters, read from the query string."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from ivr.operator.labels import REASONS
from ivr.operator.web import whole_number
from ivr.phones import normalize
from storage.review import QueueFilter

# The query arguments the queue page carries over into its links; nothing else reaches
# url_for, where a stray `endpoint` or `_external` argument would break or redirect it.
QUERY_KEYS = ("reason", "status", "from", "to", "supplier", "q", "page")


def link_args(args: Mapping[str, str]) -> dict[str, str]:
    """The known filter arguments of a query string, for the page's own links."""
    return {k: args[k] for k in QUERY_KEYS if k in args}


def _day(raw: str | None) -> date | None:
    """DD.MM.YYYY, as operators type it, or YYYY-MM-DD, as links carry it; else None."""
    text = (raw or "").strip()
    try:
        if "." in text:
            return datetime.strptime(text, "%d.%m.%Y").date()
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def shown_day(raw: str | None) -> str:
    """A filter's date as the form shows it, DD.MM.YYYY; what cannot be read, as typed."""
    day = _day(raw)
    return day.strftime("%d.%m.%Y") if day else (raw or "")


def _utc(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def queue_filter(args: Mapping[str, str], zone: tzinfo, city_code: str) -> QueueFilter:
    """Filters from `?reason=&status=&from=&to=&supplier=&q=&page=`; bad values are ignored."""
    reason = args.get("reason") or None
    status = args.get("status", "open")
    first, last = _day(args.get("from")), _day(args.get("to"))
    q = (args.get("q") or "").strip()[:40]
    page = args.get("page", "1")
    return QueueFilter(
        reason=reason if reason in REASONS else None,
        status=status if status in ("open", "resolved", "all") else "open",
        since=_utc(first, zone) if first else None,
        until=_utc(last + timedelta(days=1), zone) if last else None,
        supplier=(args.get("supplier") or "").strip()[:100] or None,
        account_number=q or None,
        phone=normalize(q, city_code) if q else None,
        page=whole_number(page, digits=6) or 1,
    )
