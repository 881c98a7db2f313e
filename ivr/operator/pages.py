"""What the call, flag and account pages show, gathered from the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ivr.operator.chart import Chart, chart
from storage.models import Account, Call, CallEvent, Flag, Meter, Operator, Reading
from storage.review import (
    account_meters,
    audit_for,
    call_events,
    call_flags,
    call_readings,
    meter_readings,
)


@dataclass(frozen=True)
class MeterBlock:
    """A meter with its latest readings and its consumption chart."""

    meter: Meter
    readings: list[Reading]
    chart: Chart | None


def audio_name(audio_dir: Path, stored: str | None) -> str | None:
    """The path under the audio directory of a stored recording, if it is there."""
    if not stored or "\x00" in stored:  # a NUL makes the path functions raise
        return None
    base = audio_dir.resolve()
    path = Path(stored)
    full = (path if path.is_absolute() else base / path).resolve()
    if not full.is_relative_to(base) or not full.is_file():
        return None
    return full.relative_to(base).as_posix()


def meter_blocks(session: Session, meters: list[Meter]) -> list[MeterBlock]:
    """History and chart for each meter."""
    blocks = []
    for meter in meters:
        readings = meter_readings(session, meter.id, limit=40)
        blocks.append(MeterBlock(meter, readings[:12], chart(readings)))
    return blocks


def _meters_for(session: Session, account: Account | None, ids: set[int]) -> list[Meter]:
    meters = account_meters(session, account.id) if account else []
    known = {m.id for m in meters}
    extra = [session.get(Meter, i) for i in sorted(ids - known)]
    return meters + [m for m in extra if m is not None]


def review_context(
    session: Session, audio_dir: Path, call: Call | None, flags: list[Flag]
) -> dict[str, Any]:
    """Everything the review page shows for a call (or a flag raised outside any call)."""
    account_id = call.account_id if call else None
    account_id = account_id or next((f.account_id for f in flags if f.account_id), None)
    account = session.get(Account, account_id) if account_id else None
    events: list[CallEvent] = call_events(session, call.id) if call else []
    flag_readings = {f.id: session.get(Reading, f.reading_id) for f in flags if f.reading_id}
    meter_ids = {f.meter_id for f in flags if f.meter_id} | {
        e.meter_id for e in events if e.meter_id
    }
    meter_ids |= {r.meter_id for r in flag_readings.values() if r}
    meters = _meters_for(session, account, meter_ids)
    readings = call_readings(session, call.id, {m.id for m in meters}) if call else []
    audio = {e.id: audio_name(audio_dir, e.audio_file) for e in events}
    replacements = {
        r.id: session.get(Reading, r.replaced_by_id)
        for r in flag_readings.values()
        if r is not None and r.replaced_by_id is not None
    }
    resolvers = {f.id: session.get(Operator, f.resolved_by_id) for f in flags if f.resolved_by_id}
    reading_audio = {r.id: audio_name(audio_dir, r.audio_file) for r in readings}
    return {
        "call": call,
        "account": account,
        "phones": [p.e164 for p in account.phones] if account else [],
        "events": events,
        "event_audio": audio,
        "readings": readings,
        "reading_audio": reading_audio,
        "flags": flags,
        "flag_readings": flag_readings,
        "replacements": replacements,
        "resolvers": {k: v.login for k, v in resolvers.items() if v is not None},
        "meters": {m.id: m for m in meters},
        "blocks": meter_blocks(session, meters),
        "audit": audit_for(
            session, call.id if call else None, [f.id for f in flags], [r.id for r in readings]
        ),
    }


def call_context(session: Session, audio_dir: Path, call_id: int) -> dict[str, Any] | None:
    """The review page of a call, or None if there is no such call."""
    call = session.get(Call, call_id)
    if call is None:
        return None
    return review_context(session, audio_dir, call, call_flags(session, call_id))


def account_context(session: Session, account: Account) -> dict[str, Any]:
    """The manual entry page of an account: meters, history, recent operator entries."""
    meters = account_meters(session, account.id)
    blocks = meter_blocks(session, meters)
    reading_ids = [r.id for b in blocks for r in b.readings]
    return {
        "account": account,
        "phones": [p.e164 for p in account.phones],
        "blocks": blocks,
        "audit": audit_for(session, reading_ids=reading_ids),
    }
