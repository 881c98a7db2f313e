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

from callflows.model import AccountInfo, Policy, Say
from tests.unit.fakes import NOW, Call, FakeDirectory, make_account, make_meter, says

CATALOGUE = Path(__file__).parents[2] / "ivr" / "prompts.ru.toml"
PHONE = "+78172123456"
OPERATOR = "+78172597904"
NIGHT = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
# Said by the webhook layer, not by the flow.
IVR_PROMPTS = {"system_error", "rate_limited"}


def load() -> dict[str, dict[str, object]]:
    return tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))


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


def keypad_call(call: Call) -> None:
    call.start()
    for keys in ["*", "0", "123456", "100", "100", "2", "300", "1"]:
        call.keys(keys)  # meter 1: repeat, operator, digits, below twice, re-entry, anomalous
    for keys in ["5*5", "5", "1"]:
        call.keys(keys)  # meter 2: no decimals, rollover
    for keys in ["00", "1"]:
        call.keys(keys)  # meter 3: zero hint, replaces
    call.silence()
    call.keys("1*2*3")
    call.silence()  # meter 6: given up


def speech_call(call: Call) -> None:
    call.start()
    call.spoken("шум")
    call.spoken("шум")
    call.spoken("сто двадцать", value="120")
    call.spoken("да", answer="yes")


def scenarios() -> list[Callable[[], Call]]:
    def keypad(policy: Policy, now: datetime | None = None) -> Callable[[], Call]:
        def run() -> Call:
            call = meters_call(policy, now)
            keypad_call(call)
            return call

        return run

    def speech() -> Call:
        call = meters_call(Policy(speech=True, operator_number=OPERATOR))
        speech_call(call)
        return call

    def identify(
        accounts: int, caller: str | None, policy: Policy, *keys: str
    ) -> Callable[[], Call]:
        def run() -> Call:
            d = directory(*(make_account(i, make_meter(i, "1")) for i in range(1, accounts + 1)))
            call = Call(d, policy, caller=caller)
            call.start()
            for k in keys:
                call.silence() if k == "-" else call.keys(k)
            return call

        return run

    def no_meters() -> Call:
        call = Call(directory(AccountInfo(1, "1")))
        call.start()
        return call

    def nothing_stored() -> Call:
        call = Call(directory(make_account(1, make_meter(1, "5"))))
        call.start()
        for _ in range(3):
            call.silence()
        return call

    outside = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    return [
        keypad(Policy()),
        keypad(Policy(operator_number=OPERATOR)),
        keypad(Policy(operator_number=OPERATOR), NIGHT),
        keypad(Policy(outside_window="flag"), outside),
        keypad(Policy(operator_number=OPERATOR), outside),
        speech,
        identify(2, PHONE, Policy(), "*", "7", "1"),
        identify(12, PHONE, Policy(), "5"),
        identify(1, None, Policy(operator_number=OPERATOR), "1", "-", "5"),
        identify(1, None, Policy(operator_number=OPERATOR, timezone="Asia/Tokyo"), "1", "2", "3"),
        identify(1, None, Policy(), "100001234", "0"),
        no_meters,
        nothing_stored,
    ]


@pytest.fixture(scope="module")
def said() -> list[Say]:
    out: list[Say] = []
    for run in scenarios():
        out.extend(says(run().log))
    return out


def test_every_prompt_said_is_in_the_catalogue_with_its_placeholders(said: list[Say]) -> None:
    catalogue = load()
    for say in said:
        assert say.prompt in catalogue, f"{say.prompt} missing from {CATALOGUE.name}"
        text = catalogue[say.prompt]["text"]
        assert isinstance(text, str)
        missing = fields(text) - set(say.params)
        assert not missing, f"{say.prompt}: {missing} not given"
        text.format(**say.params)


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
