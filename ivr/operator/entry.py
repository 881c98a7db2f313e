"""Manual entry: an operator types a reading for an account's meter through the same rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from ivr.config import Settings
from ivr.operator.checks import (
    Check,
    DecisionError,
    check_value,
    confirmed,
    local_period,
    parse_value,
)
from ivr.operator.decisions import supersede
from storage.models import Account, Meter, Reading
from storage.review import write_audit


def enter_reading(
    session: Session,
    settings: Settings,
    account: Account,
    operator_id: int,
    form: Mapping[str, str],
    now: datetime,
) -> Check | str:
    """Check a typed reading (a Check awaits "Сохранить") or store it; commits."""
    meter_id = form.get("meter_id", "")
    meter = session.get(Meter, int(meter_id)) if meter_id.isdigit() else None
    if meter is None or meter.account_id != account.id:
        raise DecisionError("Нет такого счётчика на этом лицевом счёте")
    value = parse_value(form.get("value", ""))
    period = local_period(now, settings.timezone, settings.window)
    check = check_value(session, settings.thresholds, meter, value, now, period)
    if form.get("action") == "check" or not confirmed(form.get("checked"), check):
        return check
    if not check.can_save:
        raise DecisionError(f"Нельзя сохранить: {check.text}")
    reading = Reading(
        meter_id=meter.id,
        value=value,
        taken_at=now,
        period=period,
        source="operator",
        status="accepted",
        created_at=now,
    )
    session.add(reading)
    session.flush()
    replaced = supersede(session, reading, set())
    note = (form.get("note") or "").strip()[:2000] or check.text
    after = {
        "reading_id": reading.id,
        "value": str(value),
        "period": period,
        "meter": meter.serial,
        "check": check.verdict.outcome,
        "replaced": replaced,
    }
    write_audit(
        session,
        operator_id,
        "manual_entry",
        now,
        {"account": account.number},
        after,
        note,
        reading_id=reading.id,
    )
    session.commit()
    return f"Показание {meter.serial} за {period} сохранено"
