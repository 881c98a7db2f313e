"""Apply the flow's side-effect actions to the database, inside the step's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from callflows.model import Action, Finish, Note, RaiseFlag, Say, SetAccount, StoreReading
from callflows.state import CallState
from storage import ledger
from storage.ledger import NewReading
from storage.models import Call, CallEvent, Flag


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
    # The ledger's lock order: the meters a step stores for are locked before any row that
    # names them (timeline notes, flags) is written; see storage/ledger.py.
    ledger.lock_meters(session, (a.meter_id for a in actions if isinstance(a, StoreReading)))
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
    new = NewReading(
        meter_id=action.meter_id,
        value=action.value,
        taken_at=info.now,  # type: ignore[arg-type]
        period=info.period,
        source="ivr",
        status=action.status,
        call_id=call.id,
        idempotency_key=key,
        input_mode=action.input_mode,
        transcript=action.transcript,
        confidence=action.confidence,
        audio_file=action.audio,
    )
    # A flagged value replaces nothing until an operator accepts it; what it would replace
    # then is the period's current accepted reading now (another call may have stored one
    # since this call's snapshot was taken).
    flagged = action.status == "flagged"
    current = ledger.current_readings(session, [action.meter_id] if flagged else [], info.period)
    stored = ledger.store(session, new)
    if stored is None:
        existing = ledger.reading_by_key(session, key)
        text = f"показание уже сохранено ранее (№{existing.id if existing else '?'})"
        session.add(CallEvent(call_id=call.id, seq=info.seq, kind="decision", text=text))
        return
    session.add(
        CallEvent(
            call_id=call.id,
            seq=info.seq,
            kind="decision",
            text=f"сохранено показание {action.value} ({_status_ru(action.status)})"
            + _replaced_words(stored),
            meter_id=action.meter_id,
            confidence=action.confidence,
            audio_file=action.audio,
        )
    )
    if flagged:
        detail = action.flag_detail
        if action.meter_id in current:
            replaced = current[action.meter_id]
            value = format(replaced.value, "f")
            detail = f"{detail} (заменит показание {value}, уже сданное за этот период)".strip()
        session.add(
            Flag(
                reason=action.flag_reason or "anomalous",
                detail=detail,
                call_id=call.id,
                reading_id=stored.reading_id,
                meter_id=action.meter_id,
                account_id=call.account_id,
            )
        )


def _replaced_words(stored: ledger.Stored) -> str:
    """What the store did to the period's other readings, for the timeline."""
    words = []
    if stored.replaced is not None:
        words.append(f"заменило показание {format(stored.replaced.value, 'f')}")
    if stored.later is not None:
        words.append(f"действует более позднее {format(stored.later.value, 'f')}")
    if stored.superseded:
        words.append(f"ожидающих проверки показаний заменено: {len(stored.superseded)}")
    return "; " + "; ".join(words) if words else ""


def saved_report(session: Session, call: Call) -> list[Say]:
    """What an apology must say about this call's readings: how many are stored (counted in
    the ledger, not taken from the state), and the value the caller was confirming, if any,
    which is not."""
    count = ledger.stored_by_call(session, call.id)
    says = [Say("system_error_saved", {"count": count}) if count else Say("system_error_none")]
    try:
        pending = CallState.from_json(call.state).pending
    except ValueError:
        pending = None
    if pending is not None:
        says.append(Say("system_error_not_saved", {"value": pending.value}))
    return says


def _status_ru(status: str) -> str:
    return {"accepted": "принято", "flagged": "на проверку", "rejected": "отклонено"}.get(
        status, status
    )
