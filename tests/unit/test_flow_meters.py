"""Meters: announce, validate, read back, confirm, store, skip; and the summary."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from callflows.model import AccountInfo, Finish, Hangup, MeterInfo, Note, Policy, StoreReading
from tests.unit.fakes import (
    Call,
    FakeDirectory,
    gather,
    keys_said,
    make_account,
    make_meter,
    only,
    param,
    says,
)

PHONE = "+78172123456"


def call_with(*meters: MeterInfo, policy: Policy | None = None) -> Call:
    """A started call from a known phone whose account has these meters."""
    d = FakeDirectory()
    d.add(make_account(1, *meters), PHONE)
    call = Call(d, policy)
    call.start()
    return call


def test_it_announces_the_meter_by_kind_and_place() -> None:
    d = FakeDirectory()
    meter = make_meter(1, "120", "130.5", serial="ВЛГ-0123456", location="кухня")
    d.add(make_account(1, meter, make_meter(2, kind="heat")), PHONE)
    actions = Call(d).start()
    assert param(actions, "meter_count", "count") == 2
    assert param(actions, "meter_intro", "what") == "горячая вода, кухня"
    assert "serial" not in next(s for s in says(actions) if s.prompt == "meter_intro").params
    assert param(actions, "meter_intro", "number") == 1
    assert "meter_previous" not in keys_said(actions)  # seconds on every meter: on `*` only
    assert keys_said(actions)[-1] == "value_keypad_full"
    g = gather(actions)
    assert g.finish_on_key == "#" and g.num_digits is None and g.speech is False


def test_a_star_adds_the_previous_reading_with_its_unit() -> None:
    call = call_with(make_meter(1, "120", "130.5"))
    actions = call.keys("*")
    assert param(actions, "meter_previous", "previous") == Decimal("130.5")
    assert param(actions, "meter_previous", "unit") == "м3"


def test_serial_digits_are_said_only_for_meters_that_sound_alike() -> None:
    kitchen = make_meter(1, "120", location="кухня")
    twin = make_meter(2, "50", location="кухня", serial="XY789")
    call = call_with(kitchen, twin, make_meter(3, "5", kind="heat"))
    assert param(call.log, "meter_intro_serial", "serial") == "4 5 6"
    call.keys("121")
    actions = call.keys("1")
    assert param(actions, "meter_intro_serial", "serial") == "7 8 9"
    call.keys("51")
    actions = call.keys("1")
    assert "meter_intro" in keys_said(actions) and "meter_intro_serial" not in keys_said(actions)


def test_a_single_meter_is_announced_as_the_only_one() -> None:
    call = call_with(make_meter(1, "100"))
    said = keys_said(call.log)
    assert "meter_count" not in said and "meter_intro_single" in said


def test_the_full_instructions_are_said_once_then_the_short_ones() -> None:
    call = call_with(make_meter(1, "100"), make_meter(2, "50", kind="cold_water"))
    assert keys_said(call.log)[-1] == "value_keypad_full"
    assert keys_said(call.keys("101"))[-1] == "confirm_keypad_full"
    actions = call.keys("1")
    assert keys_said(actions)[-1] == "value_keypad_short"
    assert keys_said(call.keys("51"))[-1] == "confirm_keypad_short"


def test_after_an_error_the_full_instruction_comes_back() -> None:
    call = call_with(make_meter(1, "100"), make_meter(2, "50", kind="cold_water"))
    call.keys("101")
    call.keys("1")
    assert keys_said(call.silence())[-1] == "value_keypad_full"


def test_a_new_meter_is_announced_without_a_previous_reading_and_with_the_zero_hint() -> None:
    call = Call(FakeDirectory())
    call.directory.add(make_account(1, make_meter(1, kind="heat")), PHONE)
    said = keys_said(call.start())
    assert "meter_previous" not in said
    assert said[-2:] == ["value_keypad_full", "value_zero_hint"]


def test_a_meter_with_history_gets_no_zero_hint() -> None:
    call = call_with(make_meter(1, "100"))
    assert call.state is not None
    assert "value_zero_hint" not in keys_said(call.log)


def test_it_reads_the_value_back_and_stores_it_on_confirmation() -> None:
    call = call_with(make_meter(1, "100"), make_meter(2, "50", kind="cold_water"))
    actions = call.keys("123*45")
    assert keys_said(actions) == ["readback_keyed", "confirm_keypad_full"]
    assert param(actions, "readback_keyed", "value") == Decimal("123.45")
    assert gather(actions).num_digits == 1
    actions = call.keys("1")
    assert only(actions, StoreReading) == [
        StoreReading(key="m1", meter_id=1, value=Decimal("123.45"), status="accepted")
    ]
    # Stored at once, before the next meter is even announced.
    kinds = [type(a).__name__ for a in actions]
    assert kinds.index("StoreReading") < kinds.index("Gather")
    assert keys_said(actions)[:2] == ["stored", "meter_intro"]
    assert param(actions, "meter_intro", "number") == 2


def test_it_says_the_summary_and_goodbye_after_the_last_meter() -> None:
    call = call_with(make_meter(1, "100"))
    call.keys("101")
    actions = call.keys("1")
    assert keys_said(actions) == ["stored", "summary", "summary_item", "summary_repeat", "goodbye"]
    assert param(actions, "summary", "count") == 1
    assert param(actions, "summary_item", "what") == "горячая вода"
    assert param(actions, "summary_item", "value") == Decimal(101)
    assert gather(actions[:-1]).num_digits == 1 and actions[-1] == Finish("completed")
    assert call.state is not None and call.state.outcome == "completed"
    assert keys_said(call.keys("*"))[0] == "summary"
    assert call.silence() == [Hangup()]
    assert call.state.finished


def test_it_asks_again_when_value_is_below_previous() -> None:
    call = call_with(make_meter(1, "100", "130"))
    actions = call.keys("125")
    assert keys_said(actions) == ["below_previous", "meter_name", "value_keypad_full"]
    assert param(actions, "below_previous", "previous") == Decimal("130")
    assert not call.stored


def test_it_stores_a_value_below_previous_as_flagged_the_second_time() -> None:
    call = call_with(make_meter(1, "100", "130"))
    call.keys("125")
    actions = call.keys("125")
    assert keys_said(actions) == ["readback_keyed", "readback_below", "confirm_keypad_full"]
    actions = call.keys("1")
    [stored] = call.stored
    assert stored.status == "flagged" and stored.flag_reason == "below_previous"
    assert "125" in stored.flag_detail and "130" in stored.flag_detail
    assert "stored_flagged" in keys_said(actions)
    assert param(actions, "summary_item_flagged", "value") == Decimal(125)


def test_a_good_value_after_a_low_one_is_accepted() -> None:
    call = call_with(make_meter(1, "100", "130"))
    call.keys("125")
    assert keys_said(call.keys("131")) == ["readback_keyed", "confirm_keypad_full"]
    call.keys("1")
    assert call.stored[0].status == "accepted"


def test_it_accepts_a_rollover_near_the_top_of_the_register() -> None:
    call = call_with(make_meter(1, "99980", "99995"))
    assert keys_said(call.keys("3")) == ["readback_keyed", "confirm_keypad_full"]
    call.keys("1")
    assert call.stored[0].status == "accepted"
    assert any("значение 3" in n.text for n in only(call.log, Note))


def test_it_warns_about_an_anomalous_value_and_stores_it_flagged() -> None:
    call = call_with(make_meter(1, "100", "104", "108", "112"))
    actions = call.keys("300")
    assert keys_said(actions) == ["readback_keyed", "readback_anomalous", "confirm_keypad_full"]
    call.keys("1")
    [stored] = call.stored
    assert stored.status == "flagged" and stored.flag_reason == "anomalous"
    assert "расход 188" in stored.flag_detail and "пределе" in stored.flag_detail


def test_it_warns_when_short_history_puts_the_value_above_the_cap() -> None:
    call = call_with(make_meter(1, "5", kind="heat"))
    assert "readback_anomalous" in keys_said(call.keys("50"))


@pytest.mark.parametrize(
    ("keyed", "integer_digits", "decimal_digits", "prompt"),
    [
        ("123456", 5, 3, "too_many_digits"),
        ("101*1234", 5, 3, "too_many_digits"),
        ("101*5", 5, 0, "too_many_digits_whole"),
    ],
)
def test_it_asks_again_when_the_value_does_not_fit_the_register(
    keyed: str, integer_digits: int, decimal_digits: int, prompt: str
) -> None:
    meter = make_meter(1, "100", integer_digits=integer_digits, decimal_digits=decimal_digits)
    call = call_with(meter)
    actions = call.keys(keyed)
    assert keys_said(actions) == [prompt, "meter_name", "value_keypad_full"]
    assert param(actions, prompt, "integer_digits") == integer_digits
    assert call.state is not None and call.state.attempts == 1


def test_it_asks_for_the_value_again_when_the_caller_presses_2() -> None:
    call = call_with(make_meter(1, "100"))
    call.keys("150")
    actions = call.keys("2")
    assert keys_said(actions) == ["meter_name", "value_keypad_short"]
    assert call.state is not None and call.state.step == "value" and call.state.pending is None
    call.keys("115")
    call.keys("1")
    assert [s.value for s in call.stored] == [Decimal(115)]


def test_it_gives_up_on_a_meter_after_too_many_re_entries() -> None:
    call = call_with(make_meter(1, "100"), make_meter(2, "50", kind="cold_water"))
    for _ in range(3):
        call.keys("150")
        actions = call.keys("2")
    assert [(f.reason, f.meter_id) for f in call.flags] == [("caller_error", 1)]
    assert keys_said(actions)[:3] == ["meter_given_up", "call_back", "meter_intro"]
    assert not call.stored


def test_it_tells_the_caller_a_reading_of_this_period_will_be_replaced() -> None:
    meter = make_meter(1, "100", current_period_value=Decimal("110"), current_period_reading_id=77)
    call = call_with(meter)
    actions = call.keys("112")
    assert keys_said(actions) == ["readback_keyed", "readback_replaces", "confirm_keypad_full"]
    assert param(actions, "readback_replaces", "current") == Decimal("110")
    call.keys("1")
    assert call.stored[0].replaces_reading_id == 77


def test_nothing_is_replaced_without_a_reading_this_period() -> None:
    call = call_with(make_meter(1, "100"))
    call.keys("112")
    call.keys("1")
    assert call.stored[0].replaces_reading_id is None


@pytest.mark.parametrize(
    ("meter", "prompt", "reason"),
    [
        (make_meter(1, "100", active=False), "meter_inactive", "meter_inactive"),
        (
            make_meter(1, "100", verification_due=date(2026, 1, 1)),
            "meter_overdue",
            "meter_overdue",
        ),
    ],
)
def test_it_skips_and_flags_a_meter_out_of_service(
    meter: MeterInfo, prompt: str, reason: str
) -> None:
    call = call_with(meter, make_meter(2, "50", kind="cold_water"))
    said = keys_said(call.log)
    assert said.index(prompt) < said.index("meter_intro")
    assert param(call.log, prompt, "serial") == "4 5 6"
    assert [(f.reason, f.meter_id) for f in call.flags] == [(reason, 1)]
    assert call.state is not None and call.state.meter is not None
    assert call.state.meter.id == 2
    assert param(call.log, "meter_intro", "number") == 2


def test_a_meter_due_for_verification_today_is_still_in_service() -> None:
    call = call_with(make_meter(1, "100", verification_due=date(2026, 11, 24)))
    assert not call.flags and "meter_intro_single" in keys_said(call.log)


def test_it_ends_politely_when_no_meter_is_in_service() -> None:
    call = call_with(make_meter(1, active=False))
    assert keys_said(call.log)[-3:] == ["meter_inactive", "summary_none", "goodbye"]
    assert call.log[-1] == Finish("completed")


def test_it_says_so_when_the_account_has_no_meters() -> None:
    d = FakeDirectory()
    d.add(AccountInfo(id=1, number="1"), PHONE)
    call = Call(d)
    assert keys_said(call.start())[-2:] == ["no_meters", "goodbye"]


@pytest.mark.parametrize("keyed", ["1*2*3", "#", "**5", "*5"])
def test_it_asks_again_when_the_keys_are_no_number(keyed: str) -> None:
    call = call_with(make_meter(1, "100"))
    assert keys_said(call.keys(keyed)) == ["not_understood", "meter_name", "value_keypad_full"]


def test_a_star_between_digits_is_the_decimal_point() -> None:
    call = call_with(make_meter(1, "100"))
    assert param(call.keys("100*5#"), "readback_keyed", "value") == Decimal("100.5")


def test_a_zero_reading_is_keyed_as_two_zeros() -> None:
    call = call_with(make_meter(1))
    assert param(call.keys("00"), "readback_keyed", "value") == Decimal(0)


def test_three_silences_at_a_value_prompt_end_a_call_no_operator_can_take() -> None:
    call = call_with(make_meter(1, "100"), make_meter(2, "50", kind="cold_water"))
    assert keys_said(call.silence()) == ["not_heard", "meter_name", "value_keypad_full"]
    call.silence()
    actions = call.silence()
    assert [(f.reason, f.meter_id) for f in call.flags] == [("no_input", 1)]
    assert keys_said(actions) == ["meter_given_up", "call_back", "summary_none", "goodbye"]
    assert call.state is not None and call.state.finished


def test_unusable_input_among_the_failures_flags_a_caller_error() -> None:
    call = call_with(make_meter(1, "100"))
    call.silence()
    call.keys("1*2*3")
    actions = call.silence()
    assert [f.reason for f in call.flags] == ["caller_error"]
    assert keys_said(actions) == ["meter_given_up", "call_back", "summary_none", "goodbye"]


def test_three_silences_at_the_confirmation_keep_the_value_as_flagged() -> None:
    call = call_with(make_meter(1, "100"))
    call.keys("110")
    said = keys_said(call.silence())
    assert said == ["not_heard", "meter_name", "readback_keyed", "confirm_keypad_full"]
    call.silence()
    actions = call.silence()
    [stored] = call.stored
    assert (stored.value, stored.status, stored.flag_reason) == (110, "flagged", "not_confirmed")
    assert not call.flags  # the stored reading carries the flag
    assert keys_said(actions)[0] == "pending_flagged"
    assert param(actions, "pending_flagged", "value") == Decimal(110)


def test_other_keys_at_the_confirmation_ask_again() -> None:
    call = call_with(make_meter(1, "100"))
    call.keys("110")
    assert keys_said(call.keys("5"))[0] == "not_understood"


def test_the_summary_counts_flagged_readings() -> None:
    call = call_with(make_meter(1, "100", "130"), make_meter(2, "50"))
    call.keys("120")
    call.keys("120")
    call.keys("1")
    call.keys("55")
    actions = call.keys("1")
    assert param(actions, "summary", "count") == 2
    assert keys_said(actions).count("summary_item") == 1
    assert param(actions, "summary_item_flagged", "value") == Decimal(120)


def test_every_step_leaves_a_note_for_the_timeline() -> None:
    call = call_with(make_meter(1, "100", "130"))
    call.keys("125")
    notes = [(n.kind, n.text) for n in only(call.log, Note)]
    assert ("input", "нажато: 125") in notes
    assert ("understood", "значение 125") in notes
    assert ("decision", "меньше предыдущего 130 — переспросили") in notes
