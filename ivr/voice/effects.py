"""Apply the flow's side-effect actions to the database, inside the step's transaction.

`collect_effects` is the one place that turns actions into rows: readings through the ledger,
timeline rows, flags and the call's changed columns. The hot path (`ivr.voice.hot_path`) writes
what it returns with prebuilt statements; `apply_effects` adds it to an ORM session."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from callflows.model import Action, Finish, Note, RaiseFlag, Say, SetAccount, StoreReading
from callflows.state import CallState
from storage import ledger
from storage.ledger import Db, NewReading
from storage.models import Call, CallEvent, Flag
from storage.steps import EventRow, FlagRow


@dataclass(frozen=True)
class StepInfo:
    """Where the effects happen: which call, which step, when, for which period."""

    call: Call
    seq: int
    period: str
    now: object  # datetime; kept loose so tests may pass any aware datetime


@dataclass(frozen=True)
class CallRef:
    """The call the effects belong to, as the ORM path and the hot path both know it."""

    id: int
    call_sid: str
    account_id: int | None


@dataclass
class Effects:
    """What a step's actions write besides the readings (which the ledger stores at once):
    timeline rows and flags in the actions' order, and the call's columns that change."""

    events: list[EventRow] = field(default_factory=list)
    flags: list[FlagRow] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)


def prompt_rows(spoken: list[str]) -> list[EventRow]:
    """What the line said in a step, as one timeline row: the operator reads a step's
    prompts as one line, and the database writes one row, not one per sentence."""
    return [EventRow("prompt", " ".join(spoken))] if spoken else []


def stores_reading(actions: list[Action]) -> bool:
    """Whether the actions store a reading (and so need the ledger in the step's transaction)."""
    return any(isinstance(action, StoreReading) for action in actions)


def call_changes(actions: list[Action]) -> dict[str, Any]:
    """The call's columns the actions change: the account it is bound to, its outcome."""
    changes: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, SetAccount):
            changes["account_id"] = action.account_id
        elif isinstance(action, Finish):
            changes["outcome"] = action.outcome
    return changes


def collect_effects(
    db: Db | None,
    call: CallRef,
    period: str,
    now: datetime,
    actions: list[Action],
    rows_later: bool = False,
    stored: ledger.Stored | None = None,
) -> Effects:
    """Store the actions' readings through the ledger on `db` (only needed when they store
    one); return the rest for the caller to write in the same transaction. `rows_later`: the
    caller writes nothing that names a meter before the ledger's statements (the hot path
    buffers its rows), so one reading's store may take its meter's lock itself. `stored`:
    the one reading was stored already (the hot path's prebuilt store): what it did."""
    effects = Effects(changes=call_changes(actions))
    account_id = call.account_id
    readings = [a for a in actions if isinstance(a, StoreReading)]
    if readings and stored is None:
        assert db is not None, "storing a reading needs the step's transaction"
    if stored is not None:
        assert len(readings) == 1, "a prebuilt store is of one reading"
    elif len(readings) > 1 or (readings and not rows_later):
        # The ledger's lock order: the meters a step stores for are locked, in id order,
        # before any row that names them (timeline notes, flags) is written; see
        # storage/ledger.py.
        ledger.lock_meters(db, (a.meter_id for a in readings))  # type: ignore[arg-type]
    for action in actions:
        if isinstance(action, StoreReading):
            _store(db, call, account_id, period, now, action, effects, stored)
        elif isinstance(action, RaiseFlag):
            effects.flags.append(FlagRow(action.reason, action.detail, action.meter_id, account_id))
        elif isinstance(action, Note):
            effects.events.append(EventRow(action.kind, action.text, action.meter_id))
        elif isinstance(action, SetAccount):
            account_id = action.account_id  # later flags of this step name the account
    return effects


def apply_effects(session: Session, info: StepInfo, actions: list[Action]) -> None:
    """Store readings, raise flags, write the timeline, bind the account, record the outcome
    (the ORM path: the status callback and the first step of a call)."""
    call = info.call
    ref = CallRef(call.id, call.call_sid, call.account_id)
    effects = collect_effects(session, ref, info.period, info.now, actions)  # type: ignore[arg-type]
    for name, value in effects.changes.items():
        setattr(call, name, value)
    for event in effects.events:
        session.add(CallEvent(call_id=call.id, seq=info.seq, **asdict(event)))
    for flag in effects.flags:
        session.add(Flag(call_id=call.id, **asdict(flag)))


def new_reading(call: CallRef, period: str, now: datetime, action: StoreReading) -> NewReading:
    """The ledger's reading for a StoreReading action of this call's step."""
    return NewReading(
        meter_id=action.meter_id,
        value=action.value,
        taken_at=now,
        period=period,
        source="ivr",
        status=action.status,
        call_id=call.id,
        idempotency_key=f"ivr:{call.call_sid}:{action.key}",
        input_mode=action.input_mode,
        transcript=action.transcript,
        confidence=action.confidence,
        audio_file=action.audio,
    )


def _store(
    db: Db | None,
    call: CallRef,
    account_id: int | None,
    period: str,
    now: datetime,
    action: StoreReading,
    effects: Effects,
    stored: ledger.Stored | None = None,
) -> None:
    """Store the action's reading (or take `stored`, what the hot path's prebuilt store
    did), and add its timeline row and flag."""
    new = new_reading(call, period, now, action)
    if stored is None:
        assert db is not None
        stored = ledger.store(db, new)
    if stored is None:
        assert db is not None
        existing = ledger.reading_by_key(db, new.idempotency_key or "")
        text = f"показание уже сохранено ранее (№{existing.id if existing else '?'})"
        effects.events.append(EventRow("decision", text))
        return
    text = f"сохранено показание {action.value} ({_status_ru(action.status)})"
    effects.events.append(
        EventRow("decision", text + _replaced_words(stored), action.meter_id,
                 action.confidence, action.audio)
    )  # fmt: skip
    if action.status == "flagged":
        # A flagged value replaces nothing until an operator accepts it; what it would
        # replace then is the period's current accepted reading at the store (another call
        # may have stored one since this call's snapshot was taken). Only a flag's detail
        # names it.
        detail = action.flag_detail
        if stored.was_current is not None:
            value = format(stored.was_current.value, "f")
            detail = f"{detail} (заменит показание {value}, уже сданное за этот период)".strip()
        effects.flags.append(
            FlagRow(action.flag_reason or "anomalous", detail, action.meter_id, account_id,
                    stored.reading_id)
        )  # fmt: skip


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
