"""The readings database: accounts, meters, readings, calls and what operators do with them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from storage.clock import utcnow


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, text on SQLite (which would go through float)."""

    impl = Numeric(18, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(Numeric(18, 4, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value)
        if dialect.name == "sqlite":
            return format(value.normalize(), "f")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).normalize() + Decimal(0)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Which readings count for billing: accepted, and replaced by nothing.
CURRENT_ACCEPTED = text("status = 'accepted' AND replaced_by_id IS NULL")


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    supplier: Mapped[str] = mapped_column(String(100), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    phones: Mapped[list[Phone]] = relationship(back_populates="account")
    meters: Mapped[list[Meter]] = relationship(back_populates="account")


class Phone(Base):
    """A phone number bound to an account; one number may serve several accounts."""

    __tablename__ = "phones"
    __table_args__ = (UniqueConstraint("account_id", "e164"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    e164: Mapped[str] = mapped_column(String(20), index=True)

    account: Mapped[Account] = relationship(back_populates="phones")


class Meter(Base):
    __tablename__ = "meters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # hot_water | cold_water | heat
    unit: Mapped[str] = mapped_column(String(16))
    integer_digits: Mapped[int] = mapped_column(Integer, default=5)
    decimal_digits: Mapped[int] = mapped_column(Integer, default=3)
    supplier: Mapped[str] = mapped_column(String(100), default="")
    location: Mapped[str] = mapped_column(String(100), default="")
    verification_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    account: Mapped[Account] = relationship(back_populates="meters")


class Call(Base):
    """One phone call; `state` is the flow's JSON state, `seq` counts the webhooks served."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    caller: Mapped[str] = mapped_column(String(40), default="")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    state: Mapped[str] = mapped_column(Text, default="{}")
    seq: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    input_modes: Mapped[str] = mapped_column(String(32), default="")  # "keypad", "speech" or both


class CallReply(Base):
    """The TwiML served for a call's step, so a replayed webhook gets the same answer."""

    __tablename__ = "call_replies"
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    seq: Mapped[int] = mapped_column(Integer)
    twiml: Mapped[str] = mapped_column(Text)


class CallEvent(Base):
    """Append-only timeline of a call: prompts, inputs, understanding, decisions."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(16))  # prompt|input|understood|decision|status
    text: Mapped[str] = mapped_column(Text, default="")
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    audio_file: Mapped[str | None] = mapped_column(String(300), nullable=True)


class Reading(Base):
    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_meter_taken", "meter_id", "taken_at"),
        # A meter's readings of a period (the ledger's open rows, a caller's current ones).
        Index("ix_readings_meter_period", "meter_id", "period"),
        # The ledger's invariant (storage/ledger.py): at most one current accepted reading
        # per meter and period, whatever code path writes.
        Index(
            "uq_readings_current_accepted",
            "meter_id",
            "period",
            unique=True,
            sqlite_where=CURRENT_ACCEPTED,
            postgresql_where=CURRENT_ACCEPTED,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    period: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM
    source: Mapped[str] = mapped_column(String(16))  # ivr | operator | import
    status: Mapped[str] = mapped_column(String(16))  # accepted | flagged | rejected
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), nullable=True)
    # A unique key per call, meter and step: a replayed webhook cannot store twice.
    idempotency_key: Mapped[str | None] = mapped_column(String(120), unique=True, nullable=True)
    # Set when a later reading of the same period replaced this one; kept as history.
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"), nullable=True)
    input_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    transcript: Mapped[str | None] = mapped_column(Text, nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    audio_file: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    meter: Mapped[Meter] = relationship()


class Flag(Base):
    """Something the line could not settle, waiting for an operator."""

    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), nullable=True, index=True)
    reading_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"), nullable=True)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"), nullable=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open|resolved
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Unused since sign-in throttling moved to `counters` (per login and address).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Part of every session cookie: raising it (sign-out, password, admin) ends them all.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class AuditEntry(Base):
    """Who changed what, when, from what to what. Never updated, never deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(32))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), nullable=True, index=True)
    reading_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"), nullable=True)
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("flags.id"), nullable=True)
    before: Mapped[str] = mapped_column(Text, default="")
    after: Mapped[str] = mapped_column(Text, default="")
    note: Mapped[str] = mapped_column(Text, default="")


class Utterance(Base):
    """What the recognizer heard on a call's audio stream during one step."""

    __tablename__ = "utterances"
    __table_args__ = (Index("ix_utterances_call_seq", "call_sid", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    words: Mapped[str] = mapped_column(Text, default="[]")
    audio_file: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Counter(Base):
    """A count of events in a window, updated in one conditional UPDATE (storage/counters.py).

    Rate limits and sign-in throttles: a count read and then inserted would let simultaneous
    requests all pass the check.
    """

    __tablename__ = "counters"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
