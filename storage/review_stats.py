"""Figures for the operator dashboard: calls, readings, input modes, flags, drop-offs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from statistics import mean
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from storage.models import Call, Flag, Reading


@dataclass(frozen=True)
class Figures:
    """What happened on the line between two moments (UTC, start in, end out)."""

    calls: int = 0
    readings: int = 0
    readings_by_status: dict[str, int] = field(default_factory=dict)
    readings_by_mode: dict[str, int] = field(default_factory=dict)
    calls_by_mode: dict[str, int] = field(default_factory=dict)
    flags_by_reason: dict[str, int] = field(default_factory=dict)
    drop_offs: dict[str, int] = field(default_factory=dict)
    median_seconds: float | None = None


def _step_of(state: str | None, detail: str) -> str:
    """Where a dropped call stopped: the flow's step in the call state, else in the flag detail."""
    try:
        step = json.loads(state or "{}").get("step")
    except (ValueError, AttributeError):
        step = None
    if isinstance(step, str) and step and step != "done":
        return step
    # Details name the step in Russian («подтверждение показания»); older ones by its code.
    m = re.search(r"на шаге «([^»]+)»", detail or "") or re.search(
        r"(?:на шаге|step[\"']?\s*[=:])\s*[\"']?([\w.-]+)", detail or ""
    )
    if m:
        return m[1]
    return (detail or "").strip()[:40] or "?"


def median_call_seconds(session: Session, since: datetime, until: datetime) -> float | None:
    """Median length of the calls started in [since, until) that have ended, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        length: ColumnElement[Any] = func.extract("epoch", Call.ended_at - Call.started_at)
    else:
        # SQLite keeps timestamps as ISO text; julianday() reads them.
        length = (func.julianday(Call.ended_at) - func.julianday(Call.started_at)) * 86400.0
    ended = (
        (Call.started_at >= since)
        & (Call.started_at < until)
        & Call.ended_at.is_not(None)
        & (Call.ended_at >= Call.started_at)
    )
    n = session.scalar(select(func.count(Call.id)).where(ended)) or 0
    if n == 0:
        return None
    middle = select(length).where(ended).order_by(length)
    values = session.scalars(middle.limit(2 - n % 2).offset((n - 1) // 2)).all()
    return round(float(mean(float(v) for v in values)), 1)


def figures(
    session: Session, since: datetime, until: datetime, period: str | None = None
) -> Figures:
    """Counts for calls started and flags raised in [since, until); readings of `period`
    when given, else readings created in the span."""
    in_span = (Call.started_at >= since) & (Call.started_at < until)
    calls = session.scalar(select(func.count(Call.id)).where(in_span)) or 0
    calls_by_mode = dict(
        session.execute(
            select(Call.input_modes, func.count(Call.id)).where(in_span).group_by(Call.input_modes)
        ).all()
    )
    # Imported history is not the line's work: count what callers and operators handed in.
    if period is not None:
        which = (Reading.period == period) & (Reading.source != "import")
    else:
        which = (
            (Reading.created_at >= since)
            & (Reading.created_at < until)
            & (Reading.source != "import")
        )
    by_status = dict(
        session.execute(
            select(Reading.status, func.count(Reading.id)).where(which).group_by(Reading.status)
        ).all()
    )
    by_mode = dict(
        session.execute(
            select(func.coalesce(Reading.input_mode, Reading.source), func.count(Reading.id))
            .where(which, Reading.status != "rejected")
            .group_by(func.coalesce(Reading.input_mode, Reading.source))
        ).all()
    )
    flag_span = (Flag.created_at >= since) & (Flag.created_at < until)
    by_reason = dict(
        session.execute(
            select(Flag.reason, func.count(Flag.id)).where(flag_span).group_by(Flag.reason)
        ).all()
    )
    drops: dict[str, int] = {}
    dropped = session.execute(
        select(Call.state, Flag.detail)
        .select_from(Flag)
        .outerjoin(Call, Call.id == Flag.call_id)
        .where(flag_span, Flag.reason == "dropped_call")
    )
    for state, detail in dropped:
        step = _step_of(state, detail)
        drops[step] = drops.get(step, 0) + 1
    return Figures(
        calls=calls,
        readings=sum(n for status, n in by_status.items() if status != "rejected"),
        readings_by_status=by_status,
        readings_by_mode={str(k or "—"): v for k, v in by_mode.items()},
        calls_by_mode={str(k or "—"): v for k, v in calls_by_mode.items()},
        flags_by_reason=by_reason,
        drop_offs=dict(sorted(drops.items(), key=lambda kv: -kv[1])),
        median_seconds=median_call_seconds(session, since, until),
    )
