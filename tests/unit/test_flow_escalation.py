"""A lost caller is led to a person; a transfer nobody answers is never silent; nothing keyed
is thrown away; lone keys and `0#` do what the caller means."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from callflows.flow import advance
from callflows.model import Finish, Hangup, Keys, MeterInfo, Note, Policy, RaiseFlag, Transfer
from callflows.state import CallState
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
OPERATOR = "+78172597904"
STAFFED = Policy(operator_number=OPERATOR)
NIGHT = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 22:00 in Moscow


def call_with(*meters: MeterInfo, policy: Policy = STAFFED, now: datetime | None = None) -> Call:
    d = FakeDirectory()
    d.add(make_account(1, *meters), PHONE)
    call = Call(d, policy, now=now) if now else Call(d, policy)
    call.start()
    return call


def two_meters(policy: Policy = STAFFED, now: datetime | None = None) -> Call:
    return call_with(
        make_meter(1, "100", location="кухня"),
        make_meter(2, "50", kind="cold_water"),
        policy=policy,
        now=now,
    )


def test_the_second_failure_gives_a_hint_and_offers_the_operator() -> None:
    call = two_meters()
    first = keys_said(call.silence())
    assert first == ["not_heard", "meter_name", "value_keypad_full"]
    second = call.silence()
    said = keys_said(second)
    assert said == ["not_heard", "offer_operator", "meter_name", "meter_previous", "hint_value"]
    assert param(second, "meter_name", "what") == "горячая вода, кухня"


def test_no_operator_is_offered_out_of_hours() -> None:
    call = two_meters(now=NIGHT)
    call.silence()
    assert "offer_operator" not in keys_said(call.silence())


def test_the_third_failure_transfers_during_operator_hours() -> None:
    call = two_meters()
    call.silence()
    call.keys("1*2*3")
    actions = call.silence()
    assert [(f.reason, f.meter_id) for f in call.flags] == [("caller_error", 1)]
    assert keys_said(actions) == ["meter_given_up", "transfer"]
    assert actions[-1] == Transfer(OPERATOR, result=True)
    assert call.state is not None and call.state.step == "transfer"


def test_a_silent_caller_reaches_the_operator_offer_within_two_failures() -> None:
    call = Call(FakeDirectory(), STAFFED, caller=None)
    call.start()
    call.silence()
    assert "offer_operator" in keys_said(call.silence())
    assert isinstance(call.silence()[-1], Transfer)


def test_out_of_hours_the_third_failure_flags_and_says_when_to_call_back() -> None:
    call = two_meters(now=NIGHT)
    for _ in range(3):
        actions = call.silence()
    assert [f.reason for f in call.flags] == ["no_input"]
    said = keys_said(actions)
    assert said[:3] == ["meter_given_up", "operator_hours", "call_back"]
    assert said[-1] == "goodbye" and actions[-1] == Finish("completed")


def test_a_busy_operator_is_said_and_the_caller_carries_on_where_they_were() -> None:
    call = two_meters()
    call.keys("0")
    actions = call.transfer_ended("busy")
    assert keys_said(actions)[:3] == ["operator_missed", "carry_on", "meter_intro"]
    assert call.state is not None and call.state.step == "value" and call.state.meter_index == 0
    assert any("не ответил (busy)" in n.text for n in only(actions, Note))
    call.keys("110")
    call.keys("1")
    assert [s.value for s in call.stored] == [Decimal(110)]
    assert call.state.outcome != "transferred"


def test_an_unanswered_transfer_after_a_give_up_moves_to_the_next_meter() -> None:
    call = two_meters()
    for _ in range(3):
        call.silence()
    actions = call.transfer_ended("no-answer")
    assert keys_said(actions)[:2] == ["operator_missed", "meter_intro"]
    assert call.state is not None and call.state.meter_index == 1


def test_an_unanswered_transfer_of_an_unknown_caller_tells_the_other_ways() -> None:
    call = Call(FakeDirectory(), STAFFED, caller=None)
    call.start()
    for keys in ("1", "2", "3"):
        call.keys(keys)
    actions = call.transfer_ended("failed")
    assert keys_said(actions) == ["operator_missed", "other_ways", "operator_hours", "goodbye"]
    assert actions[-2:] == [Hangup(), Finish("operator_unanswered")]


def test_a_value_read_back_but_not_confirmed_is_kept_as_flagged_at_transfer() -> None:
    call = two_meters()
    call.keys("110")
    actions = call.keys("0")
    [kept] = call.stored
    assert (kept.value, kept.status, kept.flag_reason) == (Decimal(110), "flagged", "not_confirmed")
    said = keys_said(actions)
    assert said.index("pending_flagged") < said.index("transfer")
    assert param(actions, "pending_flagged", "unit") == "м3"
    # If nobody answers, the caller goes on with the next meter: this one is stored.
    actions = call.transfer_ended("busy")
    assert call.state is not None and call.state.meter_index == 1
    call.keys("51")
    call.keys("1")
    assert [s.meter_id for s in call.stored] == [1, 2]


def test_a_completed_transfer_ends_the_call_as_transferred() -> None:
    call = two_meters()
    call.keys("0")
    assert call.transfer_ended("completed")[-2:] == [Hangup(), Finish("transferred")]
    assert call.state is not None and call.state.outcome == "transferred"


def test_a_call_that_ends_with_the_operator_before_a_result_is_transferred() -> None:
    call = two_meters()
    call.keys("0")
    actions = call.ended()
    assert not only(actions, RaiseFlag) and actions[-1] == Finish("transferred")


def test_the_summary_names_each_value_and_a_star_says_it_again() -> None:
    call = two_meters()
    call.keys("129*4")
    call.keys("1")
    call.keys("51")
    actions = call.keys("1")
    items = [s.params for s in gather(actions[:-1]).prompts if s.prompt == "summary_item"]
    assert items == [
        {"what": "горячая вода, кухня", "value": Decimal("129.4"), "unit": "м3"},
        {"what": "холодная вода", "value": Decimal(51), "unit": "м3"},
    ]
    assert param(actions, "summary", "count") == 2
    assert gather(actions[:-1]).num_digits == 1
    assert keys_said(call.keys("*"))[:3] == ["summary", "summary_item", "summary_item"]
    assert call.keys("5") == [Hangup()]


def test_zero_hash_is_a_zero_reading_on_a_new_meter() -> None:
    call = call_with(make_meter(1, kind="heat"))
    actions = call.keys("0#")
    assert param(actions, "readback_keyed", "value") == Decimal(0)


def test_zero_hash_asks_for_the_operator_where_the_register_cannot_read_zero() -> None:
    call = call_with(make_meter(1, "100"))
    assert isinstance(call.keys("0#")[-1], Transfer)


def test_a_lone_zero_on_a_new_meter_still_asks_for_the_operator() -> None:
    call = call_with(make_meter(1, kind="heat"))
    assert isinstance(call.keys("0")[-1], Transfer)


def test_value_prompts_act_on_a_lone_key_within_two_seconds() -> None:
    call = call_with(make_meter(1, "100"))
    g = gather(call.log)
    assert g.timeout <= 2 and g.first_key_wait is not None and g.first_key_wait > g.timeout


@pytest.mark.parametrize(("now", "prompt"), [(None, "help_keys"), (NIGHT, "help_keys_no_operator")])
def test_the_greeting_offers_zero_only_while_operators_answer(
    now: datetime | None, prompt: str
) -> None:
    call = two_meters(now=now)
    assert keys_said(call.log)[1] == prompt


def test_a_hidden_number_is_not_called_the_callers_number() -> None:
    call = Call(FakeDirectory(), STAFFED, caller=None)
    said = keys_said(call.start())
    assert "caller_hidden" in said and "caller_unknown" not in said


def test_the_same_value_as_this_periods_is_not_said_to_replace_it() -> None:
    meter = make_meter(1, "4", current_period_value=Decimal(5), current_period_reading_id=3)
    said = keys_said(call_with(meter).keys("5"))
    assert "readback_same" in said and "readback_replaces" not in said


def test_a_call_in_progress_at_the_format_3_upgrade_hears_its_count_in_the_summary() -> None:
    sample = Path(__file__).parent / "states" / "format_2.json"
    state = CallState.from_json(sample.read_text(encoding="utf-8"))
    assert (state.told, state.resume, state.taken) == ([], "", [])
    state.stored = 1  # a reading stored before the upgrade, which `taken` cannot name
    after, actions = advance(state, Keys("1", NOW), FakeDirectory(), Policy())
    assert param(actions, "summary", "count") == 2
    assert keys_said(actions).count("summary_item") == 1
