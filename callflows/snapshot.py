"""The account snapshot kept in a call's state, to and from plain JSON values.

Decimals travel as strings (exact), dates and datetimes as ISO text. Decoding checks every type
and raises ValueError, so a corrupt state never reaches the flow.
"""

from __future__ import annotations

import json
import threading
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, cast, get_args

from callflows.model import AccountInfo, MeterInfo, MeterKind, PastReading

T = TypeVar("T")
_KINDS = get_args(MeterKind)


def field_of(data: dict[str, Any], key: str, kind: type[T], optional: bool = False) -> T:
    """data[key] checked to be of `kind` (None allowed when optional); ValueError otherwise."""
    if key not in data:
        raise ValueError(f"state: {key!r} missing")
    value = data[key]
    if value is None and optional:
        return cast(T, None)
    # bool is an int in Python; a flag must not pass for a counter or the other way round.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"state: {key!r} should be {kind.__name__}, got {value!r}")
    return value


def decimal_of(data: dict[str, Any], key: str, optional: bool = False) -> Decimal | None:
    """A Decimal stored as text."""
    raw = field_of(data, key, str, optional)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"state: {key!r} is not a number: {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"state: {key!r} is not a finite number: {raw!r}")
    return value


def required_decimal(data: dict[str, Any], key: str) -> Decimal:
    """A Decimal that must be there."""
    value = decimal_of(data, key)
    assert value is not None
    return value


def _datetime_of(data: dict[str, Any], key: str) -> datetime:
    raw = field_of(data, key, str)
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"state: {key!r} is not a date and time: {raw!r}") from None


def _date_of(data: dict[str, Any], key: str) -> date | None:
    raw = field_of(data, key, str, optional=True)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"state: {key!r} is not a date: {raw!r}") from None


def dict_of(value: object, what: str) -> dict[str, Any]:
    """`value` checked to be a JSON object."""
    if not isinstance(value, dict):
        raise ValueError(f"state: {what} should be an object, got {value!r}")
    return value


def list_of(data: dict[str, Any], key: str) -> list[Any]:
    """data[key] checked to be a JSON array."""
    return field_of(data, key, list)


def meter_to_json(meter: MeterInfo) -> dict[str, Any]:
    """A meter with its history as plain JSON values."""
    return {
        "id": meter.id,
        "serial": meter.serial,
        "kind": meter.kind,
        "unit": meter.unit,
        "integer_digits": meter.integer_digits,
        "decimal_digits": meter.decimal_digits,
        "location": meter.location,
        "verification_due": meter.verification_due.isoformat() if meter.verification_due else None,
        "active": meter.active,
        "history": [
            {"value": str(r.value), "taken_at": r.taken_at.isoformat()} for r in meter.history
        ],
        "current_period_value": (
            None if meter.current_period_value is None else str(meter.current_period_value)
        ),
        "current_period_reading_id": meter.current_period_reading_id,
    }


def meter_from_json(raw: object) -> MeterInfo:
    """The inverse of meter_to_json."""
    data = dict_of(raw, "meter")
    kind = field_of(data, "kind", str)
    if kind not in _KINDS:
        raise ValueError(f"state: unknown meter kind {kind!r}")
    history = tuple(
        PastReading(required_decimal(r, "value"), _datetime_of(r, "taken_at"))
        for r in (dict_of(item, "reading") for item in list_of(data, "history"))
    )
    return MeterInfo(
        id=field_of(data, "id", int),
        serial=field_of(data, "serial", str),
        kind=cast(MeterKind, kind),
        unit=field_of(data, "unit", str),
        integer_digits=field_of(data, "integer_digits", int),
        decimal_digits=field_of(data, "decimal_digits", int),
        location=field_of(data, "location", str),
        verification_due=_date_of(data, "verification_due"),
        active=field_of(data, "active", bool),
        history=history,
        current_period_value=decimal_of(data, "current_period_value", optional=True),
        current_period_reading_id=field_of(data, "current_period_reading_id", int, True),
    )


def account_to_json(account: AccountInfo) -> dict[str, Any]:
    """An account with its meters as plain JSON values."""
    return {
        "id": account.id,
        "number": account.number,
        "address": account.address,
        "supplier": account.supplier,
        "meters": [meter_to_json(m) for m in account.meters],
    }


def account_from_json(raw: object) -> AccountInfo:
    """The inverse of account_to_json."""
    data = dict_of(raw, "account")
    return AccountInfo(
        id=field_of(data, "id", int),
        number=field_of(data, "number", str),
        address=field_of(data, "address", str),
        supplier=field_of(data, "supplier", str),
        meters=tuple(meter_from_json(m) for m in list_of(data, "meters")),
    )


class AccountTexts:
    """Account snapshots and their JSON text, both ways, for the last `size` accounts seen.

    A call's account snapshot is taken once, at identification, and never changes (its
    dataclasses are frozen), yet every step parsed and checked it from the state's JSON, then
    wrote it back: about half of the state's (de)serialisation, some 30 µs a webhook (issue 9).
    So the text an account was read from (or last written as) is remembered with it: writing
    that account again gives that text, and reading that text again gives that account. Both
    are exact: the account is what `account_from_json` makes of the text, and the text reads
    back as the account. Bounded, oldest out first; safe across threads.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._accounts: dict[str, AccountInfo] = {}
        # By identity (a frozen account is never changed): the entry holds the account, so its
        # id() is not reused while the entry lives.
        self._texts: dict[int, tuple[AccountInfo, str]] = {}
        self._lock = threading.Lock()

    def account(self, text: str, raw: object) -> AccountInfo:
        """`account_from_json(raw)`, where `raw` is what `text` (a JSON object) parses to."""
        found = self._accounts.get(text)
        if found is None:
            found = account_from_json(raw)
            self._remember(found, text)
        return found

    def text(self, account: AccountInfo) -> str:
        """The account as JSON text (sorted keys, not ASCII-escaped), or the text it was read
        from, which reads back as the same account."""
        found = self._texts.get(id(account))
        if found is not None and found[0] is account:
            return found[1]
        text = json.dumps(account_to_json(account), ensure_ascii=False, sort_keys=True)
        self._remember(account, text)
        return text

    def _remember(self, account: AccountInfo, text: str) -> None:
        with self._lock:
            self._accounts[text] = account
            self._texts[id(account)] = (account, text)
            while len(self._accounts) > self._size:
                del self._accounts[next(iter(self._accounts))]
            while len(self._texts) > self._size:
                del self._texts[next(iter(self._texts))]
