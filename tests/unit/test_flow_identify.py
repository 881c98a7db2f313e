"""The start of a call: greeting, window policy, identification by caller ID or account number."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callflows.model import Finish, Hangup, Policy, SetAccount, Transfer
from tests.unit.fakes import (
    NOW,
    Call,
    FakeDirectory,
    gather,
    keys_said,
    make_account,
    make_meter,
    only,
    param,
)

PHONE = "+78172123456"
OPERATOR = Policy(operator_number="+78172597904")


@pytest.fixture
def directory() -> FakeDirectory:
    d = FakeDirectory()
    d.add(make_account(1, make_meter(1, "100"), number="123456789"), PHONE)
    return d


def test_it_greets_and_asks_for_the_first_meter_when_caller_id_matches(
    directory: FakeDirectory,
) -> None:
    call = Call(directory)
    actions = call.start()
    assert only(actions, SetAccount) == [SetAccount(1)]
    assert keys_said(actions)[:2] == ["greeting", "help_keys_no_operator"]
    assert "meter_intro_single" in keys_said(actions)
    assert call.state is not None and call.state.step == "value"
    assert directory.lookups == [f"phone:{PHONE}"]


def test_it_mentions_the_operator_key_when_an_operator_number_is_set(
    directory: FakeDirectory,
) -> None:
    assert "help_keys" in keys_said(Call(directory, OPERATOR).start())


def test_it_asks_which_account_when_a_phone_has_several() -> None:
    d = FakeDirectory()
    d.add(
        make_account(1, make_meter(1), number="1001234", address="г. Вологда, ул. Мира, д. 5"),
        PHONE,
    )
    d.add(
        make_account(2, make_meter(2), number="2005678", address="ул. Ленина, д. 7, кв. 3"), PHONE
    )
    actions = Call(d).start()
    g = gather(actions)
    assert g.num_digits == 1 and g.speech is False
    options = [s.params for s in g.prompts if s.prompt == "choose_account_option"]
    assert options == [
        {"tail": "1 2 3 4", "street": "ул. Мира, д. 5", "key": 1},
        {"tail": "5 6 7 8", "street": "ул. Ленина, д. 7", "key": 2},
    ]
    assert not only(actions, SetAccount)


def test_it_takes_the_account_the_caller_chooses() -> None:
    d = FakeDirectory()
    d.add(make_account(1, make_meter(1)), PHONE)
    d.add(make_account(2, make_meter(2, "50")), PHONE)
    call = Call(d)
    call.start()
    actions = call.keys("2")
    assert only(actions, SetAccount) == [SetAccount(2)]
    assert call.state is not None and call.state.meter is not None
    assert call.state.meter.id == 2 and call.state.candidates == []


@pytest.mark.parametrize("key", ["3", "9", "#", "12"])
def test_it_asks_again_when_the_choice_is_not_an_option(key: str) -> None:
    d = FakeDirectory()
    d.add(make_account(1, make_meter(1)), PHONE)
    d.add(make_account(2, make_meter(2)), PHONE)
    call = Call(d)
    call.start()
    actions = call.keys(key)
    assert keys_said(actions)[0] == "not_understood"
    assert "choose_account_option" in keys_said(actions)
    assert call.state is not None and call.state.step == "choose_account"


def test_it_ends_the_call_when_no_account_is_chosen_three_times() -> None:
    d = FakeDirectory()
    d.add(make_account(1, make_meter(1)), PHONE)
    d.add(make_account(2, make_meter(2)), PHONE)
    call = Call(d)
    call.start()
    call.silence()
    call.silence()
    actions = call.silence()
    assert [f.reason for f in call.flags] == ["no_input"]
    assert actions[-2:] == [Hangup(), Finish("no_input")]
    assert call.state is not None and call.state.finished


def test_it_asks_for_the_account_number_when_the_caller_is_unknown(
    directory: FakeDirectory,
) -> None:
    call = Call(directory, caller="+79000000000")
    actions = call.start()
    assert keys_said(actions)[-2:] == ["caller_unknown", "account_number"]
    assert gather(actions).finish_on_key == "#"
    assert call.state is not None and call.state.step == "account_number"


def test_it_does_not_look_up_a_withheld_number(directory: FakeDirectory) -> None:
    call = Call(directory, caller=None)
    assert keys_said(call.start())[-1] == "account_number"
    assert directory.lookups == []


def test_it_asks_for_the_account_number_when_a_phone_has_too_many_accounts() -> None:
    d = FakeDirectory()
    for i in range(1, 11):
        d.add(make_account(i, make_meter(i)), PHONE)
    actions = Call(d).start()
    assert keys_said(actions)[-2:] == ["too_many_accounts", "account_number"]


def test_it_finds_the_account_by_the_keyed_number_and_its_flat(directory: FakeDirectory) -> None:
    call = Call(directory, caller=None)
    call.start()
    asked = call.keys("123456789#")
    assert keys_said(asked) == ["account_exists", "second_fact_flat"]
    actions = call.keys("5#")
    assert only(actions, SetAccount) == [SetAccount(1)]
    assert param(actions, "account_found", "street") == "ул. Мира, д. 1"
    assert directory.lookups == ["number:123456789"]


def test_it_asks_again_when_the_account_number_is_unknown(directory: FakeDirectory) -> None:
    call = Call(directory, caller=None)
    call.start()
    actions = call.keys("555")
    assert keys_said(actions) == ["account_not_found", "account_number"]
    assert call.state is not None and call.state.attempts == 1


def test_it_does_not_look_up_an_account_number_with_a_star(directory: FakeDirectory) -> None:
    call = Call(directory, caller=None)
    call.start()
    assert keys_said(call.keys("12*34")) == ["not_understood", "account_number"]
    assert directory.lookups == []


def test_it_hands_over_to_an_operator_after_three_unknown_account_numbers(
    directory: FakeDirectory,
) -> None:
    call = Call(directory, OPERATOR, caller=None)
    call.start()
    call.keys("1")
    call.keys("2")
    actions = call.keys("3")
    assert [f.reason for f in call.flags] == ["unknown_caller"]
    assert "identify_failed" in keys_said(actions)
    assert actions[-1] == Transfer("+78172597904", result=True)
    assert call.transfer_ended("completed")[-1] == Finish("transferred")


def test_it_says_goodbye_after_three_unknown_account_numbers_out_of_hours(
    directory: FakeDirectory,
) -> None:
    night = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 22:00 in Moscow
    call = Call(directory, OPERATOR, caller=None, now=night)
    call.start()
    for digits in ("1", "2"):
        call.keys(digits)
    actions = call.silence()
    assert [f.reason for f in call.flags] == ["unknown_caller"]
    assert keys_said(actions)[-3:] == ["identify_failed", "operator_hours", "goodbye"]
    assert actions[-2:] == [Hangup(), Finish("unknown_caller")]
    assert not only(actions, Transfer)


def test_it_says_goodbye_after_three_silences_at_the_account_number(
    directory: FakeDirectory,
) -> None:
    call = Call(directory, caller=None)
    call.start()
    call.silence()
    call.silence()
    actions = call.silence()
    assert keys_said(actions) == ["identify_failed", "goodbye"]
    assert actions[-1] == Finish("unknown_caller")
    assert "попыток: 3" in call.flags[0].detail


def test_it_refuses_readings_outside_the_window(directory: FakeDirectory) -> None:
    call = Call(directory, OPERATOR, now=datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    actions = call.start()
    assert keys_said(actions) == ["greeting", "outside_window", "operator_hours", "goodbye"]
    assert param(actions, "outside_window", "first") == 23
    assert param(actions, "outside_window", "last") == 25
    assert param(actions, "operator_hours", "start") == 8
    assert param(actions, "operator_hours", "end") == 20
    assert actions[-2:] == [Hangup(), Finish("outside_window")]
    assert directory.lookups == []
    assert call.state is not None and call.state.finished


def test_the_window_is_judged_in_the_lines_time_zone(directory: FakeDirectory) -> None:
    # 22 November 21:30 UTC is already 23 November 00:30 in Moscow.
    call = Call(directory, now=datetime(2026, 11, 22, 21, 30, tzinfo=UTC))
    assert "outside_window" not in keys_said(call.start())
    # 25 November 21:30 UTC is 26 November in Moscow: too late.
    late = Call(directory, now=datetime(2026, 11, 25, 21, 30, tzinfo=UTC))
    assert "outside_window" in keys_said(late.start())


def test_it_takes_readings_for_review_outside_the_window_when_the_policy_says_flag(
    directory: FakeDirectory,
) -> None:
    policy = Policy(outside_window="flag")
    call = Call(directory, policy, now=datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    assert "outside_window_flag" in keys_said(call.start())
    call.keys("101")
    call.keys("1")
    [stored] = call.stored
    assert stored.status == "flagged" and stored.flag_reason == "outside_window"
    assert call.state is not None and call.state.period == "2026-12"


def test_the_period_is_the_current_month_inside_the_window(directory: FakeDirectory) -> None:
    call = Call(directory, now=NOW)
    call.start()
    assert call.state is not None and call.state.period == "2026-11"


def test_an_anomalous_reading_outside_the_window_keeps_its_reason_and_notes_the_date() -> None:
    d = FakeDirectory()
    d.add(make_account(1, make_meter(1, "100")), PHONE)
    call = Call(d, Policy(outside_window="flag"), now=datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    call.start()
    call.keys("500")
    call.keys("1")
    [stored] = call.stored
    assert stored.flag_reason == "anomalous" and "вне дней приёма 23–25" in stored.flag_detail
