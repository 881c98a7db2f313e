"""Manual entry: an operator types a reading for an account's meter through the same rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from ivr.config import Settings
from ivr.operator.checks import Check, DecisionError, check_value, confirmed, once_key, parse_value
from ivr.operator.web import whole_number
from storage import ledger
from storage.ledger import NewReading
from storage.models import Account, Meter
from storage.review import write_audit

ALREADY = "Это показание уже сохранено"


def enter_reading(
    session: Session,
    settings: Settings,
    account: Account,
    operator_id: int,
    form: Mapping[str, str],
    now: datetime,
) -> Check | str:
    """Check a typed reading (a Check awaits "Сохранить") or store it; commits.

    The "Сохранить" form's one-time token is the reading's idempotency key: the same form
    posted twice, even at once, stores one reading."""
    meter_id = whole_number(form.get("meter_id"))
    meter = session.get(Meter, meter_id) if meter_id is not None else None
    if meter is None or meter.account_id != account.id:
        raise DecisionError("Нет такого счётчика на этом лицевом счёте")
    value = parse_value(form.get("value", ""))
    period = ledger.period_of(now, settings.timezone, settings.window)
    check = check_value(session, settings.thresholds, meter, value, now, period)
    key = once_key(form)
    if form.get("action") == "check" or not confirmed(form.get("checked"), check) or not key:
        return check
    if not check.can_save:
        raise DecisionError(f"Нельзя сохранить: {check.text}")
    ledger.lock_meters(session, [meter.id])
    new = NewReading(
        meter_id=meter.id,
        value=value,
        taken_at=now,
        period=period,
        source="operator",
        idempotency_key=key,
        created_at=now,
    )
    stored = ledger.store(session, new)
    if stored is None:
        session.rollback()
        return ALREADY
    note = (form.get("note") or "").strip()[:2000] or check.text
    after = {
        "reading_id": stored.reading_id,
        "value": str(value),
        "period": period,
        "meter": meter.serial,
        "check": check.verdict.outcome,
        "replaced": [stored.replaced.id] if stored.replaced else [],
        "superseded": list(stored.superseded),
    }
    write_audit(
        session,
        operator_id,
        "manual_entry",
        now,
        {"account": account.number},
        after,
        note,
        reading_id=stored.reading_id,
    )
    session.commit()
    return f"Показание {meter.serial} за {period} сохранено"
