"""Spoken values and answers, and prompts that invite speech only when the line listens."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from callflows.context import LOW_CONFIDENCE, MIN_CONFIDENCE
from callflows.model import Gather, Policy, Transfer
from tests.unit.fakes import Call, FakeDirectory, gather, keys_said, make_account, make_meter

PHONE = "+78172123456"
SPEECH = Policy(speech=True, operator_number="+78172597904")
CATALOGUE = Path(__file__).parents[2] / "ivr" / "prompts.ru.toml"


def started(policy: Policy = SPEECH) -> Call:
    d = FakeDirectory()
    d.add(make_account(1, make_meter(1, "100"), make_meter(2, "50", kind="cold_water")), PHONE)
    call = Call(d, policy)
    call.start()
    return call


def test_value_and_confirm_prompts_invite_speech_when_the_line_listens() -> None:
    call = started()
    first = gather(call.log)
    assert first.speech is True and keys_said([first])[-1] == "value_speech_full"
    confirm = gather(call.spoken("сто двадцать", value="120"))
    assert confirm.speech is True and keys_said([confirm])[-1] == "confirm_speech_full"


def test_keypad_only_prompts_never_invite_speech() -> None:
    call = started(Policy())
    call.keys("120")
    said = keys_said(call.log)
    assert "value_keypad_full" in said and "confirm_keypad_full" in said
    assert not any("_speech" in k for k in said)
    assert all(not g.speech for g in call.log if isinstance(g, Gather))
    catalogue = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))
    for key in said:
        text = catalogue[key]["text"].lower()
        assert "скажите" not in text and "назовите" not in text, key


def test_identification_prompts_do_not_listen_for_speech() -> None:
    call = Call(FakeDirectory(), SPEECH, caller=None)
    assert gather(call.start()).speech is False


def test_a_spoken_value_is_read_back_and_stored_with_its_transcript() -> None:
    call = started()
    actions = call.spoken("сто двадцать и пять десятых", confidence=0.93, value="120.5")
    assert keys_said(actions) == ["readback_spoken", "confirm_speech_full"]
    call.spoken("да", answer="yes")
    [stored] = call.stored
    assert stored.value == Decimal("120.5") and stored.input_mode == "speech"
    assert stored.transcript == "сто двадцать и пять десятых"
    assert stored.confidence == 0.93 and stored.audio == "rec/1.wav"
    assert not call.flags


def test_no_spoken_at_the_confirmation_asks_for_the_value_again() -> None:
    call = started()
    call.spoken("сто двадцать", value="120")
    actions = call.spoken("нет", answer="no")
    assert keys_said(actions) == ["meter_name", "value_speech_short"]
    assert not call.stored


def test_keys_and_speech_can_be_mixed() -> None:
    call = started()
    call.spoken("сто двадцать", value="120")
    call.keys("1")
    assert call.stored[0].input_mode == "speech"
    call.keys("55")
    call.spoken("да", answer="yes")
    assert call.stored[1].input_mode == "keypad"


def test_a_value_not_understood_asks_to_key_it_in_once() -> None:
    call = started()
    assert keys_said(call.spoken("м-м-м"))[0] == "speech_not_understood"
    assert keys_said(call.spoken("э-э"))[0] == "not_understood"


def test_a_value_heard_with_too_little_confidence_counts_as_not_understood() -> None:
    call = started()
    actions = call.spoken("сто", confidence=MIN_CONFIDENCE - 0.01, value="100")
    assert keys_said(actions)[0] == "speech_not_understood"
    assert call.state is not None and call.state.step == "value"


def test_three_values_not_understood_skip_the_meter_as_a_caller_error() -> None:
    call = started()
    for _ in range(3):
        call.spoken("шум")
    assert [(f.reason, f.meter_id) for f in call.flags] == [("caller_error", 1)]


@pytest.mark.parametrize(
    ("confidence", "flagged"),
    [(MIN_CONFIDENCE, True), (LOW_CONFIDENCE - 0.01, True), (LOW_CONFIDENCE, False)],
)
def test_a_confirmed_value_heard_with_low_confidence_is_flagged_for_review(
    confidence: float, flagged: bool
) -> None:
    call = started()
    call.spoken("сто двадцать", confidence=confidence, value="120")
    call.keys("1")
    assert call.stored[0].status == "accepted"
    reasons = [(f.reason, f.meter_id) for f in call.flags]
    assert reasons == ([("low_confidence", 1)] if flagged else [])


def test_repeat_spoken_repeats_the_prompt() -> None:
    call = started()
    assert keys_said(call.spoken("повторите", answer="repeat"))[0] == "meter_intro"
    call.spoken("сто двадцать", value="120")
    assert keys_said(call.spoken("ещё раз", answer="repeat"))[0] == "readback_spoken"


def test_operator_spoken_transfers() -> None:
    call = started()
    assert isinstance(call.spoken("оператор", answer="operator")[-1], Transfer)


def test_an_unclear_answer_at_the_confirmation_asks_again() -> None:
    call = started()
    call.spoken("сто двадцать", value="120")
    actions = call.spoken("может быть")
    said = keys_said(actions)
    assert said == ["not_understood", "meter_name", "readback_spoken", "confirm_speech_full"]


def test_a_spoken_value_is_checked_like_a_keyed_one() -> None:
    call = started()
    assert keys_said(call.spoken("девяносто", value="90"))[0] == "below_previous"
