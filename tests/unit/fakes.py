"""An in-memory Directory and builders for the flow's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from callflows.flow import advance
from callflows.model import (
    AccountInfo,
    Action,
    CallEnded,
    CallStarted,
    Event,
    Gather,
    Keys,
    MeterInfo,
    MeterKind,
    PastReading,
    Policy,
    RaiseFlag,
    Say,
    Silence,
    Spoken,
    StoreReading,
    TransferEnded,
)
from callflows.state import CallState
from storage.ledger import period_of

T = TypeVar("T")

# 24 November 2026, 10:00 in Moscow: inside the default window and operator hours.
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@dataclass
class FakeDirectory:
    """Accounts by phone and by number, and a record of every lookup."""

    by_phone: dict[str, list[AccountInfo]] = field(default_factory=dict)
    accounts: list[AccountInfo] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    periods: list[str] = field(default_factory=list)  # the period of every lookup
    guesses_left: int = 1000  # account-number attempts left this hour, all callers

    def add(self, account: AccountInfo, *phones: str) -> AccountInfo:
        """Register an account, bound to these phones."""
        self.accounts.append(account)
        for phone in phones:
            self.by_phone.setdefault(phone, []).append(account)
        return account

    def period_of(self, moment: datetime) -> str:
        """The ledger's own rule, with the default time zone and window."""
        return period_of(moment, ZoneInfo(Policy().timezone), Policy().window_days)

    def accounts_for_phone(self, e164: str, period: str) -> list[AccountInfo]:
        """Accounts bound to a caller's number (E.164)."""
        self.lookups.append(f"phone:{e164}")
        self.periods.append(period)
        return list(self.by_phone.get(e164, []))

    def account_by_number(self, number: str, period: str) -> AccountInfo | None:
        """The account with this number, or None."""
        self.lookups.append(f"number:{number}")
        self.periods.append(period)
        return next((a for a in self.accounts if a.number == number), None)

    def reserve_guess(self, now: datetime) -> bool:
        """Take an attempt from the hourly limit, if one is left."""
        if self.guesses_left <= 0:
            return False
        self.guesses_left -= 1
        return True

    def release_guess(self, now: datetime) -> None:
        """Give an attempt back."""
        self.guesses_left += 1


def history(*values: str, last: datetime = NOW - timedelta(days=31)) -> tuple[PastReading, ...]:
    """Readings a month apart, oldest first, the last one `last`."""
    count = len(values)
    return tuple(
        PastReading(Decimal(v), last - timedelta(days=31 * (count - 1 - i)))
        for i, v in enumerate(values)
    )


def make_meter(
    meter_id: int = 1,
    *values: str,
    kind: MeterKind = "hot_water",
    serial: str = "",
    integer_digits: int = 5,
    decimal_digits: int = 3,
    **kwargs: object,
) -> MeterInfo:
    """A meter with a monthly history of `values`."""
    return MeterInfo(
        id=meter_id,
        serial=serial or f"SN00{meter_id}456",
        kind=kind,
        unit="Гкал" if kind == "heat" else "м3",
        integer_digits=integer_digits,
        decimal_digits=decimal_digits,
        history=history(*values),
        **kwargs,  # type: ignore[arg-type]
    )


def make_account(
    account_id: int = 1, *meters: MeterInfo, number: str = "", address: str = ""
) -> AccountInfo:
    """An account with these meters."""
    return AccountInfo(
        id=account_id,
        number=number or f"10000{account_id}234",
        address=address or f"г. Вологда, ул. Мира, д. {account_id}, кв. 5",
        supplier="Вологдатеплосеть",
        meters=meters,
    )


def says(actions: list[Action]) -> list[Say]:
    """Every Say, standalone or inside a Gather, in the order the caller hears them."""
    out: list[Say] = []
    for action in actions:
        if isinstance(action, Say):
            out.append(action)
        elif isinstance(action, Gather):
            out.extend(action.prompts)
    return out


def keys_said(actions: list[Action]) -> list[str]:
    """The prompt keys the caller hears."""
    return [s.prompt for s in says(actions)]


def param(actions: list[Action], prompt: str, name: str) -> object:
    """A parameter of the first Say with this key."""
    return next(s.params[name] for s in says(actions) if s.prompt == prompt)


def only(actions: list[Action], kind: type[T]) -> list[T]:
    """The actions of one type."""
    return [a for a in actions if isinstance(a, kind)]


def gather(actions: list[Action]) -> Gather:
    """The Gather the actions end with."""
    assert actions and isinstance(actions[-1], Gather), actions
    return actions[-1]


class Call:
    """Drives advance() as the webhooks would, through JSON state between every step."""

    def __init__(
        self,
        directory: FakeDirectory,
        policy: Policy | None = None,
        caller: str | None = "+78172123456",
        now: datetime = NOW,
    ) -> None:
        self.directory, self.policy = directory, policy or Policy()
        self.caller, self.now = caller, now
        self.state: CallState | None = None
        self.log: list[Action] = []

    def send(self, event: Event) -> list[Action]:
        """One event; the state goes through to_json/from_json as it would between requests."""
        before = None if self.state is None else CallState.from_json(self.state.to_json())
        if before is not None:
            assert before == self.state
        state, actions = advance(before, event, self.directory, self.policy)
        self.state = CallState.from_json(state.to_json())
        assert self.state == state
        self.log.extend(actions)
        return actions

    def start(self) -> list[Action]:
        """The call comes in."""
        return self.send(CallStarted(self.caller, self.now))

    def keys(self, digits: str) -> list[Action]:
        """The caller presses keys."""
        return self.send(Keys(digits, self.now))

    def silence(self) -> list[Action]:
        """The caller says and keys nothing."""
        return self.send(Silence(self.now))

    def spoken(
        self,
        transcript: str,
        confidence: float = 0.9,
        value: str | None = None,
        answer: str | None = None,
    ) -> list[Action]:
        """The recognizer heard something."""
        number = None if value is None else Decimal(value)
        event = Spoken(transcript, confidence, self.now, number, answer, audio="rec/1.wav")
        return self.send(event)

    def transfer_ended(self, status: str) -> list[Action]:
        """How the transfer to an operator ended (Twilio's DialCallStatus)."""
        return self.send(TransferEnded(status, self.now))

    def ended(self, status: str = "completed") -> list[Action]:
        """Twilio's status callback."""
        return self.send(CallEnded(status, self.now))

    @property
    def stored(self) -> list[StoreReading]:
        """Every reading stored so far."""
        return only(self.log, StoreReading)

    @property
    def flags(self) -> list[RaiseFlag]:
        """Every flag raised so far."""
        return only(self.log, RaiseFlag)
