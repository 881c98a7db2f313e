"""Every prompt the flow can say is in ivr/prompts.ru.toml, with the placeholders it fills."""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from callflows.model import AccountInfo, MeterInfo, Policy, Say
from ivr.prompts import Catalogue
from tests.unit.fakes import NOW, Call, FakeDirectory, make_account, make_meter, says

CATALOGUE = Path(__file__).parents[2] / "ivr" / "prompts.ru.toml"
PHONE = "+78172123456"
OPERATOR = "+78172597904"
NIGHT = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
# Said by the webhook layer, not by the flow.
IVR_PROMPTS = {
    "system_error",
    "system_error_saved",
    "system_error_none",
    "system_error_not_saved",
    "call_later",
    "rate_limited",
}


def load() -> dict[str, dict[str, object]]:
    """The prompts, without the optional [_settings] table."""
    data = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))
    return {key: entry for key, entry in data.items() if not key.startswith("_")}


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def directory(*accounts: AccountInfo) -> FakeDirectory:
    d = FakeDirectory()
    for account in accounts:
        d.add(account, PHONE)
    return d


def meters_call(policy: Policy | None = None, now: datetime | None = None) -> Call:
    account = make_account(
        1,
        make_meter(1, "100", "104", "108", "112", location="кухня"),
        make_meter(2, "99990", kind="cold_water", integer_digits=5, decimal_digits=0),
        make_meter(3, kind="heat", current_period_value=Decimal(2), current_period_reading_id=9),
        make_meter(4, active=False),
        make_meter(5, verification_due=date(2020, 1, 1)),
        make_meter(6, "10"),
    )
    return Call(directory(account), policy, now=now or NOW)


def play(call: Call, script: list[str]) -> Call:
    """Start the call, then: '-' is silence, 'say:TEXT:VALUE:ANSWER' is speech, 'dial:STATUS'
    the end of a transfer, else keys."""
    call.start()
    for step in script:
        if step == "-":
            call.silence()
        elif step.startswith("dial:"):
            call.transfer_ended(step.removeprefix("dial:"))
        elif step.startswith("say:"):
            _, text, value, answer = step.split(":")
            call.spoken(text, value=value or None, answer=answer or None)
        else:
            call.keys(step)
    return call


# meter 1: repeat, operator, too many digits, below twice, re-entry, anomalous;
# meter 2: no decimals, rollover; meter 3: zero hint, replaces; meter 6: given up;
# then the summary, repeated.
KEYPAD = ["*", "0", "123456", "100", "100", "2", "300", "1", "5*5", "5", "1", "00", "1"]
KEYPAD += ["-", "1*2*3", "-", "*", "-"]
# The operator is busy at a value, then at a confirmation; three silences at a confirmation.
STAFFED = ["0", "dial:busy", "*", "101", "0", "dial:no-answer", "5", "-", "-", "-"]
STAFFED += ["dial:completed"]
SPEECH = ["say:шум::", "say:шум::", "say:сто двадцать:120:", "say:да::yes"]
SPEECH += ["say:девяносто девять тысяч:99995:", "say:да::yes"]
OUTSIDE = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)


def on_meters(policy: Policy, script: list[str], now: datetime = NOW) -> Callable[[], Call]:
    """A call from a known phone whose account has one meter for each case."""
    return lambda: play(meters_call(policy, now), script)


def on_accounts(
    accounts: list[AccountInfo], caller: str | None, policy: Policy, script: list[str]
) -> Callable[[], Call]:
    """A call from `caller` (None: withheld), with these accounts on PHONE."""
    return lambda: play(Call(directory(*accounts), policy, caller=caller), script)


def simple(count: int) -> list[AccountInfo]:
    """Accounts with one meter each."""
    return [make_account(i, make_meter(i, "1")) for i in range(1, count + 1)]


def twins() -> list[AccountInfo]:
    """One account with two meters that sound alike."""
    return [make_account(1, make_meter(1, "5", location="кухня"), make_meter(2, location="кухня"))]


def again() -> MeterInfo:
    """A meter whose reading for this period is already in: 5."""
    return make_meter(1, "4", current_period_value=Decimal(5), current_period_reading_id=3)


def scenarios() -> list[Callable[[], Call]]:
    """Calls that, between them, say every prompt of the flow."""
    staffed = Policy(operator_number=OPERATOR)
    tokyo = Policy(operator_number=OPERATOR, timezone="Asia/Tokyo")
    half_hours = Policy(operator_number=OPERATOR, operator_hours=((8, 30), (18, 30)))
    return [
        on_meters(Policy(), KEYPAD),
        on_meters(staffed, [*KEYPAD[2:-2], "dial:busy", "*", "-"]),
        on_meters(staffed, STAFFED),
        on_meters(staffed, KEYPAD, NIGHT),
        on_meters(half_hours, KEYPAD, NIGHT),
        on_meters(Policy(outside_window="flag"), KEYPAD, OUTSIDE),
        on_meters(staffed, KEYPAD, OUTSIDE),
        on_meters(Policy(speech=True, operator_number=OPERATOR), SPEECH),
        on_accounts(simple(2), PHONE, Policy(), ["*", "7", "-", "1"]),
        on_accounts(simple(12), PHONE, Policy(), ["5"]),
        on_accounts(simple(1), None, staffed, ["1", "-", "5", "dial:failed"]),
        on_accounts(simple(1), None, tokyo, ["1", "2", "3"]),
        on_accounts(simple(1), None, Policy(), ["100001234", "0"]),
        on_accounts(simple(1), "+79990000000", Policy(), ["-"]),
        on_accounts(simple(1), None, Policy(), ["100001234", "7", "100001234", "5"]),
        on_accounts(
            [make_account(1, make_meter(1, "1"), address="д. Огарково, дом 7")],
            None,
            Policy(),
            ["100001234"],
        ),
        lambda: play(Call(FakeDirectory(guesses_left=0), caller=None), ["100001234"]),
        on_accounts([AccountInfo(1, "1")], PHONE, Policy(), []),
        on_accounts([make_account(1, make_meter(1, "5"))], PHONE, Policy(), ["-", "-", "-"]),
        on_accounts(twins(), PHONE, Policy(), ["-", "6", "1", "6", "1"]),
        on_accounts([make_account(1, again())], PHONE, Policy(), ["5"]),
    ]


@pytest.fixture(scope="module")
def said() -> list[Say]:
    out: list[Say] = []
    for run in scenarios():
        out.extend(says(run().log))
    return out


def test_every_prompt_said_is_in_the_catalogue_with_its_placeholders(said: list[Say]) -> None:
    catalogue = load()
    rendered = Catalogue.load(CATALOGUE)
    for say in said:
        assert say.prompt in catalogue, f"{say.prompt} missing from {CATALOGUE.name}"
        text = catalogue[say.prompt]["text"]
        assert isinstance(text, str)
        missing = fields(text) - set(say.params)
        assert not missing, f"{say.prompt}: {missing} not given"
        rendered.render(say.prompt, say.params)  # as the webhooks will, number forms and all


def test_every_prompt_in_the_catalogue_is_used(said: list[Say]) -> None:
    unused = set(load()) - IVR_PROMPTS - {s.prompt for s in said}
    assert not unused


def test_catalogue_entries_have_text_and_maybe_audio() -> None:
    for key, entry in load().items():
        assert set(entry) <= {"text", "audio"}, key
        assert isinstance(entry["text"], str) and entry["text"].strip(), key
        assert isinstance(entry.get("audio", ""), str), key


def test_no_unit_follows_a_number_placeholder() -> None:
    unit = re.compile(r"\}\s*(м3|м³|куб|гкал|кубометр)", re.IGNORECASE)
    for key, entry in load().items():
        assert not unit.search(str(entry["text"])), key
