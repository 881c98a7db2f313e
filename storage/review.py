"""Queries behind the operator view: the review queue, a call's page, meter history, decisions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.orm import Session

from storage.ledger import READINGS, counts_for_billing
from storage.models import (
    Account,
    AuditEntry,
    Call,
    CallEvent,
    Flag,
    Meter,
    Operator,
    Phone,
    Reading,
)

PAGE_SIZE = 50

S = TypeVar("S", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class QueueFilter:
    """What the operator asked the queue for; datetimes are UTC bounds (start in, end out)."""

    reason: str | None = None
    status: str = "open"  # open | resolved | all
    since: datetime | None = None
    until: datetime | None = None
    supplier: str | None = None
    account_number: str | None = None
    phone: str | None = None  # E.164
    page: int = 1


@dataclass(frozen=True)
class QueueRow:
    """One flag as the queue lists it."""

    flag_id: int
    reason: str
    detail: str
    status: str
    note: str
    created_at: datetime
    call_id: int | None
    caller: str | None
    account_number: str | None
    meter_serial: str | None
    meter_kind: str | None
    unit: str | None
    value: Decimal | None
    previous: Decimal | None


@dataclass(frozen=True)
class QueuePage:
    """A page of the queue with the totals the filters need."""

    rows: list[QueueRow]
    total: int
    page: int
    pages: int
    counts: dict[str, int] = field(default_factory=dict)


def _previous_value(meter_id: Any, before: Any, exclude_id: Any) -> Any:
    """The meter's last reading that counts (the ledger's current ones) before a moment."""
    prev = READINGS.alias("prev")
    return (
        select(prev.c.value)
        .where(
            prev.c.meter_id == meter_id,
            counts_for_billing(prev),
            prev.c.taken_at < before,
            or_(exclude_id.is_(None), prev.c.id != exclude_id),
        )
        .order_by(prev.c.taken_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def _filtered(stmt: S, f: QueueFilter, with_reason: bool = True) -> S:
    """Apply the queue's filters to a statement over flags joined to calls and accounts."""
    conds: list[ColumnElement[bool]] = []
    if with_reason and f.reason:
        conds.append(Flag.reason == f.reason)
    if f.status in ("open", "resolved"):
        conds.append(Flag.status == f.status)
    if f.since:
        conds.append(Flag.created_at >= f.since)
    if f.until:
        conds.append(Flag.created_at < f.until)
    if f.supplier:
        conds.append(or_(Account.supplier == f.supplier, Meter.supplier == f.supplier))
    search: list[ColumnElement[bool]] = []
    if f.account_number:
        search.append(Account.number == f.account_number)
    if f.phone:
        search.append(Call.caller == f.phone)
        search.append(Account.id.in_(select(Phone.account_id).where(Phone.e164 == f.phone)))
    if search:
        conds.append(or_(*search))
    return stmt.where(*conds)


def _joined(stmt: S) -> S:
    return (
        stmt.outerjoin(Call, Call.id == Flag.call_id)
        .outerjoin(Reading, Reading.id == Flag.reading_id)
        .outerjoin(Account, Account.id == func.coalesce(Flag.account_id, Call.account_id))
        .outerjoin(Meter, Meter.id == func.coalesce(Flag.meter_id, Reading.meter_id))
    )


def _joined_if(stmt: S, f: QueueFilter) -> S:
    """Counting needs the joins only when a filter looks beyond the flags table."""
    if f.supplier or f.account_number or f.phone:
        return _joined(stmt.select_from(Flag))
    return stmt.select_from(Flag)


def review_queue(session: Session, f: QueueFilter) -> QueuePage:
    """Flags matching the filter, newest first, one page, with counts per reason."""
    previous = _previous_value(
        Meter.id, func.coalesce(Reading.taken_at, Flag.created_at), Reading.id
    )
    stmt = _joined(
        select(
            Flag.id,
            Flag.reason,
            Flag.detail,
            Flag.status,
            Flag.note,
            Flag.created_at,
            Flag.call_id,
            Call.caller,
            Account.number,
            Meter.serial,
            Meter.kind,
            Meter.unit,
            Reading.value,
            previous,
        ).select_from(Flag)
    )
    stmt = _filtered(stmt, f)
    total = session.scalar(_filtered(_joined_if(select(func.count(Flag.id)), f), f))
    pages = max(1, -(-(total or 0) // PAGE_SIZE))
    page = min(max(1, f.page), pages)
    stmt = stmt.order_by(Flag.created_at.desc(), Flag.id.desc())
    stmt = stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    rows = [QueueRow(*cast(tuple[Any, ...], row)) for row in session.execute(stmt)]
    counts_stmt = _filtered(
        _joined_if(select(Flag.reason, func.count(Flag.id)), f), f, with_reason=False
    ).group_by(Flag.reason)
    counts = {reason: n for reason, n in session.execute(counts_stmt)}
    return QueuePage(rows=rows, total=total or 0, page=page, pages=pages, counts=counts)


def suppliers(session: Session) -> list[str]:
    """Suppliers known from accounts and meters, for the queue's filter."""
    names = set(session.scalars(select(Account.supplier).distinct()))
    names |= set(session.scalars(select(Meter.supplier).distinct()))
    return sorted(n for n in names if n)


def call_events(session: Session, call_id: int) -> list[CallEvent]:
    """A call's timeline in the order it happened."""
    stmt = select(CallEvent).where(CallEvent.call_id == call_id)
    return list(session.scalars(stmt.order_by(CallEvent.seq, CallEvent.at, CallEvent.id)))


def call_readings(session: Session, call_id: int, meter_ids: set[int]) -> list[Reading]:
    """Readings stored during a call for these meters (found through the meter index)."""
    if not meter_ids:
        return []
    stmt = select(Reading).where(Reading.meter_id.in_(meter_ids), Reading.call_id == call_id)
    stmt = stmt.order_by(Reading.id)
    return list(session.scalars(stmt))


def call_flags(session: Session, call_id: int) -> list[Flag]:
    """Flags raised by a call, oldest first."""
    return list(session.scalars(select(Flag).where(Flag.call_id == call_id).order_by(Flag.id)))


def audit_for(
    session: Session,
    call_id: int | None = None,
    flag_ids: list[int] | None = None,
    reading_ids: list[int] | None = None,
) -> list[tuple[AuditEntry, str | None]]:
    """Audit entries of a call, flags or readings, newest first, with the operator's login."""
    conds: list[ColumnElement[bool]] = []
    if call_id is not None:
        conds.append(AuditEntry.call_id == call_id)
    if flag_ids:
        conds.append(AuditEntry.flag_id.in_(flag_ids))
    if reading_ids:
        conds.append(AuditEntry.reading_id.in_(reading_ids))
    if not conds:
        return []
    stmt = (
        select(AuditEntry, Operator.login)
        .outerjoin(Operator, Operator.id == AuditEntry.operator_id)
        .where(or_(*conds))
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    return [(entry, login) for entry, login in session.execute(stmt)]


def account_meters(session: Session, account_id: int) -> list[Meter]:
    """An account's meters, active first, in a stable order."""
    stmt = select(Meter).where(Meter.account_id == account_id)
    return list(session.scalars(stmt.order_by(Meter.active.desc(), Meter.id)))


def meter_readings(session: Session, meter_id: int, limit: int = 24) -> list[Reading]:
    """A meter's latest readings of every status, newest first."""
    stmt = select(Reading).where(Reading.meter_id == meter_id)
    return list(session.scalars(stmt.order_by(Reading.taken_at.desc()).limit(limit)))


def find_accounts(session: Session, number: str | None, phone: str | None) -> list[Account]:
    """Accounts by exact number or by a bound phone number (E.164)."""
    conds: list[ColumnElement[bool]] = []
    if number:
        conds.append(Account.number == number)
    if phone:
        conds.append(Account.id.in_(select(Phone.account_id).where(Phone.e164 == phone)))
    if not conds:
        return []
    return list(session.scalars(select(Account).where(or_(*conds)).order_by(Account.number)))


def resolve_flag(
    session: Session, flag_id: int, operator_id: int, resolution: str, note: str, at: datetime
) -> bool:
    """Mark an open flag resolved; False if someone else resolved it first."""
    result = session.execute(
        update(Flag)
        .where(Flag.id == flag_id, Flag.status == "open")
        .values(
            status="resolved",
            resolved_by_id=operator_id,
            resolved_at=at,
            resolution=resolution,
            note=note,
        )
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(result, "rowcount", 0))


def write_audit(
    session: Session,
    operator_id: int | None,
    action: str,
    at: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str = "",
    call_id: int | None = None,
    reading_id: int | None = None,
    flag_id: int | None = None,
) -> AuditEntry:
    """Append an audit entry; before and after are stored as JSON."""
    entry = AuditEntry(
        operator_id=operator_id,
        at=at,
        action=action,
        call_id=call_id,
        reading_id=reading_id,
        flag_id=flag_id,
        before=json.dumps(before or {}, ensure_ascii=False, default=str),
        after=json.dumps(after or {}, ensure_ascii=False, default=str),
        note=note,
    )
    session.add(entry)
    return entry
