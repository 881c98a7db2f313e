"""'*' repeats, '0' asks for the operator, events out of order, and the end of the call."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callflows.flow import advance
from callflows.model import (
    CallEnded,
    CallStarted,
    Finish,
    Hangup,
    Keys,
    Policy,
    RaiseFlag,
    Silence,
    Transfer,
)
from callflows.state import CallState
from tests.unit.fakes import NOW, Call, FakeDirectory, keys_said, make_account, make_meter, param

PHONE = "+78172123456"
OPERATOR = "+78172597904"
NIGHT = datetime(2026, 11, 24, 18, 30, tzinfo=UTC)  # 21:30 in Moscow


def started(policy: Policy | None = None, now: datetime = NOW, accounts: int = 1) -> Call:
    d = FakeDirectory()
    for i in range(1, accounts + 1):
        d.add(make_account(i, make_meter(i, "100", "130"), number=f"{i}0000"), PHONE)
    call = Call(d, policy, now=now)
    call.start()
    return call


def test_a_lone_star_repeats_the_meter_announcement() -> None:
    call = started()
    said = keys_said(call.keys("*"))
    assert said == ["meter_intro_single", "meter_previous", "value_keypad_full"]
    assert call.state is not None and call.state.attempts == 0


def test_a_star_at_the_confirmation_repeats_the_read_back() -> None:
    call = started()
    call.keys("140")
    actions = call.keys("*")
    assert keys_said(actions) == ["readback_keyed", "confirm_keypad_full"]
    assert param(actions, "readback_keyed", "value") == 140


def test_a_star_repeats_the_account_choice() -> None:
    call = started(accounts=2)
    assert keys_said(call.keys("*")).count("choose_account_option") == 2


def test_a_star_repeats_the_account_number_prompt() -> None:
    call = Call(FakeDirectory(), caller=None)
    call.start()
    assert keys_said(call.keys("*")) == ["account_number"]


def test_a_star_followed_by_hash_still_repeats() -> None:
    call = started()
    assert keys_said(call.keys("*#"))[0] == "meter_intro_single"


def test_zero_transfers_to_the_operator_during_operator_hours() -> None:
    call = started(Policy(operator_number=OPERATOR))
    actions = call.keys("0")
    assert keys_said(actions) == ["transfer"]
    assert actions[-1] == Transfer(OPERATOR, result=True)
    assert call.state is not None and call.state.step == "transfer"
    actions = call.transfer_ended("completed")
    assert actions[-2:] == [Hangup(), Finish("transferred")]
    assert call.state.finished and call.state.outcome == "transferred"


@pytest.mark.parametrize("step_keys", [[], ["140"]])
def test_zero_transfers_from_the_value_and_the_confirmation(step_keys: list[str]) -> None:
    call = started(Policy(operator_number=OPERATOR))
    for keys in step_keys:
        call.keys(keys)
    assert call.keys("0")[-1] == Transfer(OPERATOR, result=True)


def test_zero_out_of_hours_says_the_hours_and_asks_again() -> None:
    call = started(Policy(operator_number=OPERATOR), now=NIGHT)
    actions = call.keys("0")
    assert keys_said(actions) == [
        "operator_closed",
        "operator_hours",
        "meter_name",
        "value_keypad_short",
    ]
    assert not any(isinstance(a, Transfer) for a in actions)
    assert call.state is not None and call.state.step == "value" and call.state.attempts == 0


def test_zero_without_an_operator_number_says_no_operator_can_be_reached() -> None:
    call = started(Policy(operator_number=None))
    actions = call.keys("0")
    assert keys_said(actions) == ["operator_unavailable", "meter_name", "value_keypad_short"]
    assert call.state is not None and not call.state.finished


def test_zero_at_the_account_choice_asks_for_the_operator() -> None:
    call = started(Policy(operator_number=OPERATOR), accounts=2)
    assert call.keys("0")[-1] == Transfer(OPERATOR, result=True)


def test_operator_hours_are_judged_in_the_lines_time_zone() -> None:
    # 17:30 UTC is 20:30 in Moscow: closed, although 17:30 is inside 08:00-20:00.
    call = started(Policy(operator_number=OPERATOR), now=datetime(2026, 11, 24, 17, 30, tzinfo=UTC))
    assert keys_said(call.keys("0"))[0] == "operator_closed"
    # 05:30 UTC is 08:30 in Moscow: open.
    early = started(Policy(operator_number=OPERATOR), now=datetime(2026, 11, 24, 5, 30, tzinfo=UTC))
    assert isinstance(early.keys("0")[-1], Transfer)


def test_a_drop_mid_call_is_flagged_with_what_was_stored() -> None:
    call = started()
    call.keys("140")
    actions = call.ended("completed")
    [flag] = [a for a in actions if isinstance(a, RaiseFlag)]
    assert flag.reason == "dropped_call" and flag.meter_id == 1
    assert "«подтверждение показания»" in flag.detail and "сохранено показаний: 0" in flag.detail
    assert "не подтверждено: 140" in flag.detail
    assert actions[-1] == Finish("dropped")
    assert call.stored == []  # the callback may come before the confirming step
    assert call.state is not None and call.state.finished and call.state.outcome == "dropped"


def test_a_drop_during_identification_is_flagged_without_a_meter() -> None:
    call = Call(FakeDirectory(), caller=None)
    call.start()
    [flag] = [a for a in call.ended("completed") if isinstance(a, RaiseFlag)]
    assert flag.meter_id is None and "«ввод лицевого счёта»" in flag.detail


def test_the_end_of_a_finished_call_changes_nothing() -> None:
    call = started()
    call.keys("140")
    call.keys("1")
    assert call.state is not None and call.state.step == "summary"
    assert call.ended() == []
    assert call.state.finished
    assert call.state.outcome == "completed"


def test_the_end_of_a_call_never_started_is_flagged() -> None:
    state, actions = advance(None, CallEnded("busy", NOW), FakeDirectory(), Policy())
    assert state.finished
    assert [type(a) for a in actions] == [RaiseFlag, Finish]


def test_keys_after_the_end_only_hang_up() -> None:
    call = started()
    call.ended()
    assert call.keys("1") == [Hangup()]


def test_an_event_before_the_call_started_is_refused() -> None:
    with pytest.raises(ValueError):
        advance(None, Keys("1", NOW), FakeDirectory(), Policy())
    with pytest.raises(ValueError):
        advance(None, Silence(NOW), FakeDirectory(), Policy())


def test_a_second_start_is_refused() -> None:
    with pytest.raises(ValueError):
        advance(CallState(step="value"), CallStarted(PHONE, NOW), FakeDirectory(), Policy())


def test_advance_does_not_change_the_state_it_was_given() -> None:
    call = started()
    assert call.state is not None
    before = call.state.to_json()
    advance(call.state, Keys("140", NOW), call.directory, call.policy)
    assert call.state.to_json() == before


def test_advance_leaves_the_state_it_was_given_alone_unless_it_is_handed_over() -> None:
    call = started()
    assert call.state is not None
    given = CallState.from_json(call.state.to_json())
    new, _ = advance(given, Keys(digits="140", now=NOW), call.directory, call.policy)
    assert given == call.state and new != given
    owned, _ = advance(given, Keys(digits="140", now=NOW), call.directory, call.policy, owned=True)
    assert owned is given and owned == new


def test_the_end_of_a_call_leaves_its_state_alone_unless_it_is_handed_over() -> None:
    call = started()
    assert call.state is not None
    given = CallState.from_json(call.state.to_json())
    ended = CallEnded(status="completed", now=NOW)
    new, _ = advance(given, ended, call.directory, call.policy)
    assert given == call.state and new != given and new.outcome == "dropped"
    owned, _ = advance(given, ended, call.directory, call.policy, owned=True)
    assert owned is given and owned == new
