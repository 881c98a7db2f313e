"""Apply the flow's side-effect actions to the database, inside the step's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from callflows.model import Action, Finish, Note, RaiseFlag, SetAccount, StoreReading
from storage.models import Call, CallEvent, Flag, Meter
from storage.readings import insert_reading, period_readings, reading_by_key


@dataclass(frozen=True)
class StepInfo:
    """Where the effects happen: which call, which step, when, for which period."""

    call: Call
    seq: int
    period: str
    now: object  # datetime; kept loose so tests may pass any aware datetime


def apply_effects(session: Session, info: StepInfo, actions: list[Action]) -> None:
    """Store readings, raise flags, write the timeline, bind the account, record the outcome."""
    call = info.call
    for action in actions:
        if isinstance(action, StoreReading):
            _store(session, info, action)
        elif isinstance(action, RaiseFlag):
            session.add(
                Flag(
                    reason=action.reason,
                    detail=action.detail,
                    call_id=call.id,
                    meter_id=action.meter_id,
                    account_id=call.account_id,
                )
            )
        elif isinstance(action, Note):
            session.add(
                CallEvent(
                    call_id=call.id,
                    seq=info.seq,
                    kind=action.kind,
                    text=action.text,
                    meter_id=action.meter_id,
                )
            )
        elif isinstance(action, SetAccount):
            call.account_id = action.account_id
        elif isinstance(action, Finish):
            call.outcome = action.outcome


def _store(session: Session, info: StepInfo, action: StoreReading) -> None:
    call = info.call
    key = f"ivr:{call.call_sid}:{action.key}"
    replaces = action.replaces_reading_id if action.status == "accepted" else None
    if action.status == "accepted":
        # Two calls for one account at once: the other may have stored this period's reading
        # after our snapshot was taken. Replace what is current now, or the period would keep
        # two current readings.
        replaces = _current_reading_id(session, action.meter_id, info.period) or replaces
    reading = insert_reading(
        session,
        meter_id=action.meter_id,
        value=action.value,
        taken_at=info.now,  # type: ignore[arg-type]
        period=info.period,
        source="ivr",
        status=action.status,
        call_id=call.id,
        idempotency_key=key,
        # A flagged value replaces the period's earlier reading only once an operator
        # accepts it; until then the earlier one stays current (and exported).
        replaces_reading_id=replaces,
        input_mode=action.input_mode,
        transcript=action.transcript,
        confidence=action.confidence,
        audio_file=action.audio,
    )
    if reading is None:
        existing = reading_by_key(session, key)
        text = f"показание уже сохранено ранее (№{existing.id if existing else '?'})"
        session.add(CallEvent(call_id=call.id, seq=info.seq, kind="decision", text=text))
        return
    session.add(
        CallEvent(
            call_id=call.id,
            seq=info.seq,
            kind="decision",
            text=f"сохранено показание {reading.value} ({_status_ru(action.status)})",
            meter_id=action.meter_id,
            confidence=action.confidence,
            audio_file=action.audio,
        )
    )
    if action.status == "flagged":
        detail = action.flag_detail
        if action.replaces_reading_id is not None:
            detail = f"{detail} (заменит показание, уже сданное за этот период)".strip()
        session.add(
            Flag(
                reason=action.flag_reason or "anomalous",
                detail=detail,
                call_id=call.id,
                reading_id=reading.id,
                meter_id=action.meter_id,
                account_id=call.account_id,
            )
        )


def _current_reading_id(session: Session, meter_id: int, period: str) -> int | None:
    """The meter's current reading of the period, the meter's row locked so stores take turns."""
    session.execute(select(Meter.id).where(Meter.id == meter_id).with_for_update())
    current = period_readings(session, [meter_id], period).get(meter_id)
    return current.id if current is not None else None


def _status_ru(status: str) -> str:
    return {"accepted": "принято", "flagged": "на проверку", "rejected": "отклонено"}.get(
        status, status
    )
