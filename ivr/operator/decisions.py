"""Operators' decisions on flags: accept, correct, reject, call back. Each one is audited."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ivr.config import Settings
from ivr.operator.checks import Check, DecisionError, check_value, confirmed, once_key
from ivr.operator.checks import parse_value as parse_value
from storage import ledger
from storage.ledger import LedgerError, LedgerReading, NewReading, Stored
from storage.models import Call, Flag, Meter
from storage.review import resolve_flag, write_audit

ACTIONS = ("accept", "correct", "reject", "call_back")
TAKEN = "Этот случай уже решён другим оператором — обновите страницу"
ALREADY = "Это исправление уже сохранено"
DONE = "Этот случай уже решён вами — обновите страницу"


def _snapshot(reading: LedgerReading | None) -> dict[str, Any]:
    if reading is None:
        return {}
    return {
        "reading_id": reading.id,
        "value": str(reading.value),
        "status": reading.status,
        "period": reading.period,
        "replaced_by_id": reading.replaced_by_id,
    }


def _changes(stored: Stored) -> dict[str, Any]:
    """What the ledger did besides storing, for the audit entry."""
    return {
        "replaced": [stored.replaced.id] if stored.replaced else [],
        "later": stored.later.id if stored.later else None,
        "superseded": list(stored.superseded),
    }


def _later_words(stored: Stored, period: str) -> str:
    if stored.later is None:
        return ""
    value = format(stored.later.value, "f")
    return f"; за {period} действует более позднее показание {value} — оно и будет выгружено"


def _open_flag(session: Session, flag_id: int, operator_id: int) -> Flag:
    flag = session.get(Flag, flag_id)
    if flag is None:
        raise DecisionError("Нет такого случая")
    if flag.status != "open":
        raise DecisionError(DONE if flag.resolved_by_id == operator_id else TAKEN)
    return flag


def _resolve(
    session: Session, flag: Flag, operator_id: int, how: str, note: str, now: datetime
) -> None:
    if not resolve_flag(session, flag.id, operator_id, how, note, now):
        session.rollback()
        raise DecisionError(TAKEN)


def decide(
    session: Session,
    settings: Settings,
    flag_id: int,
    operator_id: int,
    form: Mapping[str, str],
    now: datetime,
) -> Check | str:
    """Apply the decision in `form`; a Check when a correction awaits "Сохранить",
    else a message for the screen. Commits; raises DecisionError."""
    action = form.get("action", "")
    note = (form.get("note") or "").strip()[:2000]
    key = once_key(form)
    if action == "correct" and key and ledger.reading_by_key(session, key) is not None:
        return ALREADY  # the same "Сохранить" form, submitted again
    flag = _open_flag(session, flag_id, operator_id)
    if action == "accept":
        return _accept(session, flag, operator_id, note, now)
    if action in ("check", "correct"):
        return _correct(session, settings, flag, operator_id, form, note, now)
    if action == "reject":
        if not note:
            raise DecisionError("Укажите причину отказа")
        return _reject(session, flag, operator_id, note, now)
    if action == "call_back":
        if not note:
            raise DecisionError("Напишите, о чём перезвонить")
        before = {"note": flag.note}
        flag.note = note
        write_audit(
            session,
            operator_id,
            "call_back",
            now,
            before,
            {"note": note},
            note,
            call_id=flag.call_id,
            reading_id=flag.reading_id,
            flag_id=flag.id,
        )
        session.commit()
        return "Отмечено: перезвонить"
    raise DecisionError("Неизвестное действие")


def _accept(session: Session, flag: Flag, operator_id: int, note: str, now: datetime) -> str:
    reading = ledger.reading(session, flag.reading_id) if flag.reading_id else None
    if reading is not None:
        # The ledger's lock first: nothing that names the meter is written before it.
        ledger.lock_meters(session, [reading.meter_id])
    before = _snapshot(reading)
    _resolve(session, flag, operator_id, "accepted" if reading else "closed", note, now)
    after: dict[str, Any] = {}
    message = "Случай закрыт"
    if reading is not None:
        try:
            stored = ledger.accept(session, reading.id)
        except LedgerError:
            session.rollback()
            raise DecisionError(TAKEN) from None
        after = {**_snapshot(ledger.reading(session, reading.id)), **_changes(stored)}
        message = "Показание принято" + _later_words(stored, reading.period)
    write_audit(
        session,
        operator_id,
        "accept" if reading else "close",
        now,
        before,
        after,
        note,
        call_id=flag.call_id,
        reading_id=flag.reading_id,
        flag_id=flag.id,
    )
    session.commit()
    return message


def _moment_and_period(
    session: Session, settings: Settings, flag: Flag, old: LedgerReading | None
) -> tuple[datetime, str]:
    """When a correction counts as handed in, and for which period: the corrected reading's,
    else its call's (the period the call was let in for), else the flag's."""
    if old is not None:
        return old.taken_at, old.period
    call = session.get(Call, flag.call_id) if flag.call_id else None
    at = call.started_at if call else flag.created_at
    return at, ledger.period_of(at, settings.timezone, settings.window)


def _correct(
    session: Session,
    settings: Settings,
    flag: Flag,
    operator_id: int,
    form: Mapping[str, str],
    note: str,
    now: datetime,
) -> Check | str:
    value = parse_value(form.get("value", ""))
    old = ledger.reading(session, flag.reading_id) if flag.reading_id else None
    meter = session.get(Meter, old.meter_id if old else flag.meter_id or 0)
    if meter is None:
        raise DecisionError(
            "У этого случая нет счётчика: внесите показание на странице лицевого счёта"
        )
    at, period = _moment_and_period(session, settings, flag, old)
    check = check_value(
        session, settings.thresholds, meter, value, at, period, old.id if old else None
    )
    key = once_key(form)
    if form.get("action") == "check" or not confirmed(form.get("checked"), check) or not key:
        return check
    if not check.can_save:
        raise DecisionError(f"Нельзя сохранить: {check.text}")
    ledger.lock_meters(session, [meter.id])
    if ledger.reading_by_key(session, key) is not None:
        return ALREADY  # the same form, submitted again
    _resolve(session, flag, operator_id, "corrected", note, now)
    new = NewReading(
        meter_id=meter.id,
        value=value,
        taken_at=at,
        period=period,
        source="operator",
        call_id=flag.call_id,
        idempotency_key=key,
        created_at=now,
    )
    try:
        stored = ledger.correct(session, old.id if old else None, new)
    except LedgerError:
        session.rollback()
        raise DecisionError(TAKEN) from None
    if stored is None:
        session.rollback()
        return ALREADY
    after = {
        **_snapshot(ledger.reading(session, stored.reading_id)),
        "check": check.verdict.outcome,
        **_changes(stored),
    }
    write_audit(
        session,
        operator_id,
        "correct",
        now,
        _snapshot(old),
        after,
        note or check.text,
        call_id=flag.call_id,
        reading_id=stored.reading_id,
        flag_id=flag.id,
    )
    session.commit()
    return "Значение исправлено" + _later_words(stored, period)


def _reject(session: Session, flag: Flag, operator_id: int, note: str, now: datetime) -> str:
    reading = ledger.reading(session, flag.reading_id) if flag.reading_id else None
    if reading is not None:
        ledger.lock_meters(session, [reading.meter_id])
    before = _snapshot(reading)
    _resolve(session, flag, operator_id, "rejected", note, now)
    if reading is not None and reading.status == "flagged":
        ledger.reject(session, reading.id)
    write_audit(
        session,
        operator_id,
        "reject",
        now,
        before,
        _snapshot(ledger.reading(session, reading.id) if reading else None),
        note,
        call_id=flag.call_id,
        reading_id=flag.reading_id,
        flag_id=flag.id,
    )
    session.commit()
    return "Отклонено"
