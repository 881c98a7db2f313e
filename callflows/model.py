"""Neutral values the call flow works with: what it knows, what happens, what it asks for.

Nothing here knows about HTTP, TwiML or databases. `ivr/` turns webhooks into events,
runs `callflows.flow.advance`, and renders the actions it gets back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol

MeterKind = Literal["hot_water", "cold_water", "heat"]
ReadingStatus = Literal["accepted", "flagged", "rejected"]

# Reasons a flag is raised; the operator view groups and filters by these words.
FlagReason = Literal[
    "below_previous",
    "anomalous",
    "unknown_caller",
    "dropped_call",
    "low_confidence",
    "meter_overdue",
    "meter_inactive",
    "no_input",
    "outside_window",
    "caller_error",
    "system_error",
    "rate_limited",
    "not_confirmed",
    "unverified_caller",
]


# How operators read each reason: the review queue's labels and the call timeline's notes.
FLAG_REASON_WORDS: dict[str, str] = {
    "below_previous": "Меньше предыдущего",
    "anomalous": "Подозрительный расход",
    "unknown_caller": "Неизвестный номер",
    "dropped_call": "Звонок прерван",
    "low_confidence": "Неуверенное распознавание",
    "meter_overdue": "Просрочена поверка",
    "meter_inactive": "Счётчик выведен из работы",
    "no_input": "Нет ввода",
    "outside_window": "Вне срока приёма",
    "caller_error": "Ошибки ввода",
    "system_error": "Сбой системы",
    "rate_limited": "Слишком много звонков",
    "not_confirmed": "Не подтверждено звонившим",
    "unverified_caller": "Звонок не с номера счёта",
}


def reason_words(reason: str | None) -> str:
    """A flag reason as a lower-case Russian phrase, for timeline notes."""
    if reason is None:
        return "в порядке"
    words = FLAG_REASON_WORDS.get(reason, reason)
    return words[:1].lower() + words[1:]


# --- What the flow knows about accounts and meters (a snapshot taken at identification) ---


@dataclass(frozen=True)
class PastReading:
    """An accepted reading of a meter, used as history."""

    value: Decimal
    taken_at: datetime


@dataclass(frozen=True)
class MeterInfo:
    """A meter as the flow sees it, with the history the rules need."""

    id: int
    serial: str
    kind: MeterKind
    unit: str
    integer_digits: int
    decimal_digits: int
    location: str = ""
    verification_due: date | None = None
    active: bool = True
    # Accepted readings, oldest first; the last one is "the previous reading".
    history: tuple[PastReading, ...] = ()
    # The period's current accepted reading, if any (any channel): a confirmed value takes its
    # place. Never a flagged one: that replaces nothing until an operator accepts it.
    current_period_value: Decimal | None = None
    current_period_reading_id: int | None = None


@dataclass(frozen=True)
class AccountInfo:
    """An account and its meters, in the order the line asks for them."""

    id: int
    number: str
    address: str = ""
    supplier: str = ""
    meters: tuple[MeterInfo, ...] = ()


class Directory(Protocol):
    """Where the flow looks up accounts; `ivr/` implements it over `storage/` (the ledger)."""

    def period_of(self, moment: datetime) -> str:
        """The period ('YYYY-MM') readings handed in at `moment` count for (the ledger's rule)."""
        ...

    def accounts_for_phone(self, e164: str, period: str) -> list[AccountInfo]:
        """Accounts bound to a caller's number (E.164), meters as of `period`."""
        ...

    def account_by_number(self, number: str, period: str) -> AccountInfo | None:
        """The account with this number, or None; meters as of `period`."""
        ...

    def reserve_guess(self, now: datetime) -> bool:
        """Count an account-number attempt against the hourly limit of all callers together;
        False when the hour is full. `release_guess` takes it back when the caller proves
        the account."""
        ...

    def release_guess(self, now: datetime) -> None:
        """An attempt that ended in a confirmed second fact: it no longer counts."""
        ...


@dataclass(frozen=True)
class Thresholds:
    """Validation settings, all configurable by the utility."""

    anomaly_factor: Decimal = Decimal(3)
    # Monthly consumption caps per kind, used when history is too short for an average.
    monthly_cap: dict[str, Decimal] = field(
        default_factory=lambda: {
            "hot_water": Decimal(30),
            "cold_water": Decimal(30),
            "heat": Decimal(5),
        }
    )
    min_history_months: int = 3
    # Rollover: the previous value within this share of capacity from the top.
    rollover_margin: Decimal = Decimal("0.1")


@dataclass(frozen=True)
class Policy:
    """When and how the line takes readings."""

    window_days: tuple[int, int] = (23, 25)
    timezone: str = "Europe/Moscow"
    operator_hours: tuple[tuple[int, int], tuple[int, int]] = ((8, 0), (20, 0))
    outside_window: Literal["refuse", "flag"] = "refuse"
    operator_number: str | None = None
    speech: bool = False
    max_attempts: int = 3
    thresholds: Thresholds = field(default_factory=Thresholds)


# --- Events: one webhook is one event ---


@dataclass(frozen=True)
class CallStarted:
    """A call came in. `caller` is E.164, or None when withheld or invalid."""

    caller: str | None
    now: datetime


@dataclass(frozen=True)
class Keys:
    """The caller pressed keys; `digits` may end without '#', and is never empty."""

    digits: str
    now: datetime


@dataclass(frozen=True)
class Silence:
    """A Gather ended with nothing keyed and nothing said."""

    now: datetime


@dataclass(frozen=True)
class Spoken:
    """The recognizer heard something at a prompt.

    `value` is the parsed number (None when not understood); `answer` is a control word
    understood from the text ('yes', 'no', 'repeat', 'operator'), if any.
    """

    transcript: str
    confidence: float
    now: datetime
    value: Decimal | None = None
    answer: str | None = None
    audio: str | None = None


@dataclass(frozen=True)
class CallEnded:
    """Twilio's status callback said the call is over (completed, busy, failed...)."""

    status: str
    now: datetime


@dataclass(frozen=True)
class TransferEnded:
    """A Transfer that expected a result ended: `status` is completed, busy, no-answer,
    failed or canceled (Twilio's DialCallStatus; other back ends map theirs to these)."""

    status: str
    now: datetime


Event = CallStarted | Keys | Silence | Spoken | CallEnded | TransferEnded


# --- Actions: what `ivr/` must do, in order ---


@dataclass(frozen=True)
class Say:
    """Speak a catalogue prompt; `params` fill its placeholders (Decimals are read as words)."""

    prompt: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Gather:
    """Speak `prompts` while listening for keys (and speech, when `speech` is set).

    `timeout` is the wait after a key for the next one; `first_key_wait`, when longer, is the
    wait after the prompts for the first key (so a lone key acts quickly, yet a caller has
    time to start).
    """

    prompts: tuple[Say, ...]
    finish_on_key: str = "#"
    num_digits: int | None = None
    timeout: int = 6
    speech: bool = False
    first_key_wait: int | None = None


@dataclass(frozen=True)
class Transfer:
    """Connect the caller to an operator.

    With `result` set, the back end reports how the transfer ended (a TransferEnded event)
    and renders what the flow answers; without it the call ends with the transfer.
    """

    number: str
    result: bool = False


@dataclass(frozen=True)
class Hangup:
    """End the call."""


@dataclass(frozen=True)
class StoreReading:
    """Store a confirmed reading now. `key` makes a replayed webhook store nothing twice."""

    key: str
    meter_id: int
    value: Decimal
    status: ReadingStatus
    flag_reason: FlagReason | None = None
    flag_detail: str = ""
    replaces_reading_id: int | None = None
    input_mode: Literal["keypad", "speech"] = "keypad"
    transcript: str | None = None
    confidence: float | None = None
    audio: str | None = None


@dataclass(frozen=True)
class RaiseFlag:
    """Put something in front of an operator."""

    reason: FlagReason
    detail: str = ""
    meter_id: int | None = None


@dataclass(frozen=True)
class Note:
    """A line for the call's timeline: what was heard, how it was understood, what was decided."""

    kind: Literal["input", "understood", "decision"]
    text: str
    meter_id: int | None = None


@dataclass(frozen=True)
class SetAccount:
    """The caller is now known to be this account."""

    account_id: int


@dataclass(frozen=True)
class Finish:
    """The flow is over; `outcome` is recorded on the call."""

    outcome: str


Action = Say | Gather | Transfer | Hangup | StoreReading | RaiseFlag | Note | SetAccount | Finish
