"""Operators' decisions on flags: accept, correct, reject, call back. Each one is audited."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ivr.config import Settings
from ivr.operator.checks import Check, DecisionError, check_value, confirmed, local_period
from ivr.operator.checks import parse_value as parse_value
from storage.models import Call, Flag, Meter, Reading
from storage.review import current_in_period, mark_replaced, resolve_flag, write_audit

ACTIONS = ("accept", "correct", "reject", "call_back")
TAKEN = "Этот случай уже решён другим оператором — обновите страницу"


def _snapshot(reading: Reading | None) -> dict[str, Any]:
    if reading is None:
        return {}
    return {
        "reading_id": reading.id,
        "value": str(reading.value),
        "status": reading.status,
        "period": reading.period,
        "replaced_by_id": reading.replaced_by_id,
    }


def _open_flag(session: Session, flag_id: int) -> Flag:
    flag = session.get(Flag, flag_id)
    if flag is None:
        raise DecisionError("Нет такого случая")
    if flag.status != "open":
        raise DecisionError(TAKEN)
    return flag


def _resolve(
    session: Session, flag: Flag, operator_id: int, how: str, note: str, now: datetime
) -> None:
    if not resolve_flag(session, flag.id, operator_id, how, note, now):
        session.rollback()
        raise DecisionError(TAKEN)


def supersede(session: Session, reading: Reading, keep: set[int]) -> list[int]:
    """Mark the period's other accepted readings as replaced by `reading`; their ids."""
    replaced = []
    for other in current_in_period(session, reading.meter_id, reading.period, reading.id):
        if other.id in keep:
            continue
        if other.taken_at > reading.taken_at and reading.source != "operator":
            raise DecisionError("За этот период уже есть более позднее показание")
        if mark_replaced(session, other.id, reading.id):
            replaced.append(other.id)
    return replaced


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
    flag = _open_flag(session, flag_id)
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
    reading = session.get(Reading, flag.reading_id) if flag.reading_id else None
    before = _snapshot(reading)
    _resolve(session, flag, operator_id, "accepted" if reading else "closed", note, now)
    replaced: list[int] = []
    if reading is not None:
        if reading.replaced_by_id is not None:
            session.rollback()
            raise DecisionError("Это показание уже заменено другим")
        replaced = supersede(session, reading, set())
        reading.status = "accepted"
    after = {**_snapshot(reading), "replaced": replaced}
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
    return "Показание принято" if reading else "Случай закрыт"


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
    old = session.get(Reading, flag.reading_id) if flag.reading_id else None
    meter = session.get(Meter, old.meter_id if old else flag.meter_id or 0)
    if meter is None:
        raise DecisionError(
            "У этого случая нет счётчика: внесите показание на странице лицевого счёта"
        )
    if old is not None:
        at, period = old.taken_at, old.period
    else:
        call = session.get(Call, flag.call_id) if flag.call_id else None
        at = call.started_at if call else flag.created_at
        period = local_period(at, settings.timezone, settings.window)
    check = check_value(
        session, settings.thresholds, meter, value, at, period, old.id if old else None
    )
    if form.get("action") == "check" or not confirmed(form.get("checked"), check):
        return check
    if not check.can_save:
        raise DecisionError(f"Нельзя сохранить: {check.text}")
    before = _snapshot(old)
    _resolve(session, flag, operator_id, "corrected", note, now)
    new = Reading(
        meter_id=meter.id,
        value=value,
        taken_at=at,
        period=period,
        source="operator",
        status="accepted",
        call_id=flag.call_id,
        created_at=now,
    )
    session.add(new)
    session.flush()
    if old is not None and not mark_replaced(session, old.id, new.id):
        session.rollback()
        raise DecisionError("Это показание уже заменено другим")
    replaced = supersede(session, new, {old.id} if old else set())
    after = {**_snapshot(new), "check": check.verdict.outcome, "replaced": replaced}
    write_audit(
        session,
        operator_id,
        "correct",
        now,
        before,
        after,
        note or check.text,
        call_id=flag.call_id,
        reading_id=new.id,
        flag_id=flag.id,
    )
    session.commit()
    return "Значение исправлено"


def _reject(session: Session, flag: Flag, operator_id: int, note: str, now: datetime) -> str:
    reading = session.get(Reading, flag.reading_id) if flag.reading_id else None
    before = _snapshot(reading)
    _resolve(session, flag, operator_id, "rejected", note, now)
    if reading is not None and reading.replaced_by_id is None:
        reading.status = "rejected"
    write_audit(
        session,
        operator_id,
        "reject",
        now,
        before,
        _snapshot(reading),
        note,
        call_id=flag.call_id,
        reading_id=flag.reading_id,
        flag_id=flag.id,
    )
    session.commit()
    return "Отклонено"
