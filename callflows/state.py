"""The flow's state, kept as JSON in the calls table.

The state carries the account snapshot taken at identification (meters and their history), so
later steps need no lookups, and enough to rebuild the current prompt: `*` repeats it by
building it again from `step`, `meter_index` and `pending`. `period` is the period the call was
let in for (decided once, at the window check); every reading the call stores counts for it.

Saved states outlive the code that wrote them: a call in progress during an upgrade is served
its next step by the new code. So the JSON carries a format number, and a state of any past
format is upgraded, one format at a time, before it is read.

How to change the format (for example, to add a field):
1. Bump FORMAT to N+1, write the field in `to_json` and read it in `from_json`.
2. Add `_upgrade_N(data) -> data` turning a format-N dict into format N+1 (give a new field
   its default: an old call never had it), and register it in UPGRADES under N.
3. Keep a sample: tests/unit/states/format_N.json, a real format-N state (saved by the code
   before your change, e.g. `confirming().to_json()` in tests/unit/test_flow_state.py). The
   samples of every past format stay in the tests for good: each must still load and finish
   its call.
An optional field that old states lack may instead be read with `data.get(key, default)`
without a new format, if its absence means exactly the default; say so next to it.

Formats:
1. The first.
2. A meter's `current_period_value` / `current_period_reading_id` name the period's current
   ACCEPTED reading; format 1 could name a flagged one, never accepted (issue 8).
3. `told` (instructions heard in full), `resume` (where a transfer nobody answers goes back
   to), `taken` (readings stored, for the end summary); steps `transfer` and `summary`
   (issue 11).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from callflows.model import AccountInfo, MeterInfo
from callflows.snapshot import (
    AccountTexts,
    account_from_json,
    account_to_json,
    decimal_of,
    dict_of,
    field_of,
    list_of,
    required_decimal,
)

STEPS = (
    "start",
    "choose_account",
    "account_number",
    "second_fact",
    "value",
    "confirm",
    "transfer",
    "summary",
    "done",
)
# Prompts whose full instruction the caller has heard once; later they hear the short form.
TOLD = ("value", "confirm")
# Where a call goes after a transfer nobody answered: back to a step, the next meter, or goodbye.
RESUMES = ("value", "account_number", "second_fact", "choose_account", "next", "end")
FORMAT = 3


@dataclass
class Pending:
    """A value heard or keyed for the current meter, waiting for the caller's confirmation."""

    value: Decimal
    status: str = "accepted"  # accepted | flagged
    flag_reason: str | None = None
    flag_detail: str = ""
    warning: str | None = None  # a read-back warning prompt: readback_below, readback_anomalous
    previous: Decimal | None = None  # for the below-previous warning
    input_mode: str = "keypad"  # keypad | speech
    transcript: str | None = None
    confidence: float | None = None
    audio: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "value": str(self.value),
            "status": self.status,
            "flag_reason": self.flag_reason,
            "flag_detail": self.flag_detail,
            "warning": self.warning,
            "previous": None if self.previous is None else str(self.previous),
            "input_mode": self.input_mode,
            "transcript": self.transcript,
            "confidence": self.confidence,
            "audio": self.audio,
        }

    @classmethod
    def from_dict(cls, raw: object) -> Pending:
        """Parse; ValueError on wrong types."""
        data = dict_of(raw, "pending")
        status = field_of(data, "status", str)
        mode = field_of(data, "input_mode", str)
        if status not in ("accepted", "flagged") or mode not in ("keypad", "speech"):
            raise ValueError(f"state: bad pending status or mode {status!r}, {mode!r}")
        confidence = data.get("confidence")
        if confidence is not None and (
            not isinstance(confidence, int | float) or isinstance(confidence, bool)
        ):
            raise ValueError(f"state: 'confidence' should be a number, got {confidence!r}")
        return cls(
            value=required_decimal(data, "value"),
            status=status,
            flag_reason=field_of(data, "flag_reason", str, optional=True),
            flag_detail=field_of(data, "flag_detail", str),
            warning=field_of(data, "warning", str, optional=True),
            previous=decimal_of(data, "previous", optional=True),
            input_mode=mode,
            transcript=field_of(data, "transcript", str, optional=True),
            confidence=None if confidence is None else float(confidence),
            audio=field_of(data, "audio", str, optional=True),
        )


@dataclass
class Taken:
    """A reading stored during this call, as the end summary names it."""

    meter_id: int
    value: Decimal
    status: str = "accepted"  # accepted | flagged

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"meter_id": self.meter_id, "value": str(self.value), "status": self.status}

    @classmethod
    def from_dict(cls, raw: object) -> Taken:
        """Parse; ValueError on wrong types."""
        data = dict_of(raw, "taken")
        status = field_of(data, "status", str)
        if status not in ("accepted", "flagged"):
            raise ValueError(f"state: bad taken status {status!r}")
        meter_id = field_of(data, "meter_id", int)
        return cls(meter_id=meter_id, value=required_decimal(data, "value"), status=status)


def _told_of(data: dict[str, Any]) -> list[str]:
    told = field_of(data, "told", list)
    if any(t not in TOLD for t in told):
        raise ValueError(f"state: bad 'told' {told!r}")
    return list(told)


@dataclass
class CallState:
    """Where a call is; serialisable so any worker can serve the next step."""

    step: str = "start"
    caller: str | None = None
    period: str = ""
    # Outside the window with the "flag" policy: every stored reading goes to review.
    outside_window: bool = False
    candidates: list[AccountInfo] = field(default_factory=list)  # to choose from by key
    account: AccountInfo | None = None
    meter_index: int = 0
    attempts: int = 0  # failed tries at the current prompt
    bad_input: bool = False  # a failure at this prompt was unusable input, not silence
    spoken_hint_given: bool = False  # "please key it in" said once for this meter
    below_count: int = 0  # values below the previous one, in a row, for this meter
    entries: int = 0  # values read back for this meter
    pending: Pending | None = None
    stored: int = 0
    flagged: int = 0
    outcome: str = ""
    told: list[str] = field(default_factory=list)  # full instructions heard (see TOLD)
    resume: str = ""  # during a transfer: where to go back to if no operator answers
    taken: list[Taken] = field(default_factory=list)  # readings stored, for the end summary
    # The account was found by its number, not by caller ID: its readings go to review.
    # Optional without a new format (read with a default): an old state lacking it was a
    # call that no second-fact step ever bound, exactly what False means.
    by_number: bool = False

    @property
    def finished(self) -> bool:
        """True once the flow has said goodbye or transferred."""
        return self.step == "done"

    @property
    def meter(self) -> MeterInfo | None:
        """The meter being asked about, if any."""
        if self.account is None or not 0 <= self.meter_index < len(self.account.meters):
            return None
        return self.account.meters[self.meter_index]

    def to_json(self) -> str:
        """Serialise for the calls table: `json.dumps(…, ensure_ascii=False, sort_keys=True)`
        of the whole state (tests/unit/test_flow_state.py holds it so), its account written
        from ACCOUNT_TEXTS."""
        data = {
            "format": FORMAT,
            "step": self.step,
            "caller": self.caller,
            "period": self.period,
            "outside_window": self.outside_window,
            "candidates": [account_to_json(a) for a in self.candidates],
            "meter_index": self.meter_index,
            "attempts": self.attempts,
            "bad_input": self.bad_input,
            "spoken_hint_given": self.spoken_hint_given,
            "below_count": self.below_count,
            "entries": self.entries,
            "pending": None if self.pending is None else self.pending.to_dict(),
            "stored": self.stored,
            "flagged": self.flagged,
            "outcome": self.outcome,
            "told": self.told,
            "resume": self.resume,
            "taken": [t.to_dict() for t in self.taken],
            "by_number": self.by_number,
        }
        rest = json.dumps(data, ensure_ascii=False, sort_keys=True)
        account = "null" if self.account is None else ACCOUNT_TEXTS.text(self.account)
        # "account" sorts before every other key, so sort_keys writes it first.
        return ACCOUNT_FIRST + account + ", " + rest[1:]

    @classmethod
    def from_json(cls, raw: str) -> CallState:
        """Parse; raise ValueError on anything corrupt."""
        try:
            loaded, account_text = _load(raw)
        except (TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"state: not JSON: {exc}") from None
        data = dict_of(loaded, "state")
        if data.get("format") != FORMAT:
            account_text = None  # an upgrade may change the account: not the text read
        data = upgrade(data)
        step = field_of(data, "step", str)
        if step not in STEPS:
            raise ValueError(f"state: unknown step {step!r}")
        raw_account, raw_pending = data.get("account"), data.get("pending")
        if raw_account is None:
            account = None
        elif account_text is not None:
            account = ACCOUNT_TEXTS.account(account_text, raw_account)
        else:
            account = account_from_json(raw_account)
        state = cls(
            step=step,
            caller=field_of(data, "caller", str, optional=True),
            period=field_of(data, "period", str),
            outside_window=field_of(data, "outside_window", bool),
            candidates=[account_from_json(a) for a in list_of(data, "candidates")],
            account=account,
            meter_index=field_of(data, "meter_index", int),
            attempts=field_of(data, "attempts", int),
            bad_input=field_of(data, "bad_input", bool),
            spoken_hint_given=field_of(data, "spoken_hint_given", bool),
            below_count=field_of(data, "below_count", int),
            entries=field_of(data, "entries", int),
            pending=None if raw_pending is None else Pending.from_dict(raw_pending),
            stored=field_of(data, "stored", int),
            flagged=field_of(data, "flagged", int),
            outcome=field_of(data, "outcome", str),
            told=_told_of(data),
            resume=field_of(data, "resume", str),
            taken=[Taken.from_dict(t) for t in list_of(data, "taken")],
            by_number=field_of(data, "by_number", bool) if "by_number" in data else False,
        )
        state.check()
        return state

    def check(self) -> None:
        """Raise ValueError if the fields contradict the step."""
        if self.step in ("value", "confirm") and self.meter is None:
            raise ValueError(f"state: step {self.step!r} without a meter")
        if self.step == "confirm" and self.pending is None:
            raise ValueError("state: confirm step without a pending value")
        if self.step == "transfer" and self.resume not in RESUMES:
            raise ValueError(f"state: transfer with unknown step to resume {self.resume!r}")
        if self.step == "choose_account" and not self.candidates:
            raise ValueError("state: choose_account step without accounts to choose from")
        if self.step == "second_fact" and len(self.candidates) != 1:
            raise ValueError("state: second_fact step without the account found")


# How to_json begins: the account is written first (see there), then the other fields.
ACCOUNT_FIRST = '{"account": '
# The accounts of recent states and their JSON text (callflows/snapshot.py).
ACCOUNT_TEXTS = AccountTexts()
_DECODER = json.JSONDecoder()


def _load(raw: str) -> tuple[Any, str | None]:
    """`json.loads(raw)`, and the text of its account when `to_json` wrote the state (the
    account first): that text is what ACCOUNT_TEXTS knows accounts by. Anything else, or a
    second "account" key (the last would count), is left to json.loads."""
    if not isinstance(raw, str) or not raw.startswith(ACCOUNT_FIRST + "{"):
        return json.loads(raw), None
    start = len(ACCOUNT_FIRST)
    account, end = _DECODER.raw_decode(raw, start)
    rest = raw[end + 2 :] if raw.startswith(", ", end) else ""
    if not rest.lstrip().startswith('"'):
        return json.loads(raw), None
    loaded = json.loads("{" + rest)
    if "account" in loaded:
        return json.loads(raw), None
    return {"account": account, **loaded}, raw[start:end]


def _upgrade_1(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 took any reading of the period that was not rejected as the one a confirmed
    value replaces, a flagged one too. Which it was is not in the state, so the upgrade
    forgets it: better the caller hears no «заменит показание …» than a value never accepted.
    The store finds the real current reading itself, so what gets replaced is unchanged."""
    for account in [data.get("account"), *(data.get("candidates") or [])]:
        for meter in (account or {}).get("meters", []) if isinstance(account, dict) else []:
            if isinstance(meter, dict):
                meter["current_period_value"] = None
                meter["current_period_reading_id"] = None
    return {**data, "format": 2}


def _upgrade_2(data: dict[str, Any]) -> dict[str, Any]:
    """Format 2 had no record of the prompts heard, of transfers or of the readings taken: a
    call in progress hears the full instructions once more, and its summary counts what was
    stored (`stored`) without naming the readings stored before the upgrade."""
    return {**data, "told": [], "resume": "", "taken": [], "format": 3}


# Format N -> format N + 1, for every past format N.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_1, 2: _upgrade_2}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A saved state of any known format, brought to FORMAT one step at a time."""
    while (fmt := data.get("format")) != FORMAT:
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt not in UPGRADES:
            raise ValueError(f"state: unknown format {fmt!r}")
        data = UPGRADES[fmt](data)
    return data
