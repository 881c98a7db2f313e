"""Whatever a caller does, the flow answers, stays serialisable, and stores each meter once."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callflows.model import (
    Action,
    Event,
    Finish,
    Gather,
    Hangup,
    Keys,
    Policy,
    Silence,
    Spoken,
    Transfer,
    TransferEnded,
)
from tests.unit.fakes import NOW, Call, FakeDirectory, make_account, make_meter

PHONE = "+78172123456"

KEYS = st.sampled_from(
    ["*", "0", "1", "2", "3", "00", "105", "99", "1*2*3", "123456", "110*5", "777", "#"]
)
# Inside the window and operator hours; outside the window; a night inside the window.
TIMES = st.sampled_from(
    [NOW, datetime(2026, 11, 10, 9, 0, tzinfo=UTC), datetime(2026, 11, 24, 19, 0, tzinfo=UTC)]
)
EVENTS = st.one_of(
    KEYS.map(lambda k: Keys(k, NOW)),
    st.just(Silence(NOW)),
    st.builds(
        lambda v, a, c: Spoken("…", c, NOW, None if v is None else Decimal(v), a),
        st.sampled_from([None, "105", "90", "500"]),
        st.sampled_from([None, "yes", "no", "repeat", "operator"]),
        st.sampled_from([0.2, 0.5, 0.9]),
    ),
    st.sampled_from(["completed", "busy", "no-answer", "failed"]).map(
        lambda status: TransferEnded(status, NOW)
    ),
)
POLICIES = st.builds(
    Policy,
    operator_number=st.sampled_from([None, "+78172597904"]),
    speech=st.booleans(),
    outside_window=st.sampled_from(["refuse", "flag"]),
)


def directory() -> FakeDirectory:
    d = FakeDirectory()
    meters = (
        make_meter(1, "100", "104"),
        make_meter(2, kind="heat", active=False),
        make_meter(3, "99990", verification_due=date(2030, 1, 1)),
        make_meter(4, "100", current_period_value=Decimal(101), current_period_reading_id=8),
    )
    d.add(make_account(1, *meters, number="777"), PHONE)
    d.add(make_account(2, make_meter(5, "10"), number="888"), "+79000000002")
    d.add(make_account(3, make_meter(6, "10"), number="999"), "+79000000002")
    return d


def well_formed(actions: list[Action]) -> bool:
    """A reply ends by listening (the summary's Gather records the end), by a transfer that
    waits for its result, or by finishing with a hang-up."""
    if not actions:
        return False
    if isinstance(actions[-1], Gather | Transfer) or actions == [Hangup()]:
        return True
    if isinstance(actions[-1], Finish) and isinstance(actions[-2], Gather):
        return True
    return isinstance(actions[-1], Finish) and isinstance(actions[-2], Hangup)


def out_of_turn(step: str, event: Event) -> bool:
    """Events the back end never sends: a transfer result outside a transfer, or the reverse."""
    return (step == "transfer") != isinstance(event, TransferEnded)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([PHONE, "+79000000002", "+79000000009", None]),
    POLICIES,
    TIMES,
    st.lists(EVENTS, max_size=25),
)
def test_any_sequence_of_events_gets_a_well_formed_reply(
    caller: str | None, policy: Policy, now: datetime, events: list[Event]
) -> None:
    call = Call(directory(), policy, caller=caller, now=now)
    assert well_formed(call.start())
    for event in events:
        assert call.state is not None
        finished = call.state.finished
        if not finished and out_of_turn(call.state.step, event):
            with pytest.raises(ValueError):
                call.send(event)
            continue
        actions = call.send(event)
        assert actions == [Hangup()] if finished else well_formed(actions)
    keys = [s.key for s in call.stored]
    assert len(keys) == len(set(keys))
    assert all(s.meter_id in (1, 3, 4, 5, 6) for s in call.stored)
    assert sum(1 for a in call.log if isinstance(a, Finish)) <= 1
    call.ended()
    assert call.state is not None and call.state.finished
    assert sum(1 for a in call.log if isinstance(a, Finish)) == 1
