"""The body-deadline watchdog runs each callback at its deadline, unless it was cancelled."""

from __future__ import annotations

import threading
import time

from ivr.guards import Watchdog


def test_callbacks_run_at_their_deadlines_in_any_order_of_scheduling() -> None:
    dog = Watchdog()
    ran: list[tuple[str, float]] = []
    done = threading.Event()
    start = time.monotonic()

    def note(name: str) -> None:
        ran.append((name, time.monotonic() - start))
        if len(ran) == 3:
            done.set()

    dog.call_at(start + 1.2, lambda: note("late"))
    time.sleep(0.1)  # the watchdog thread now waits for that one
    dog.call_at(start + 0.3, lambda: note("early"))  # sooner: the thread must wake for it
    dog.call_at(start + 0.5, lambda: note("middle"))  # later than that: no need to wake it
    assert done.wait(5)
    assert [name for name, _ in ran] == ["early", "middle", "late"]
    for (_, at), due in zip(ran, (0.3, 0.5, 1.2), strict=True):
        assert due - 0.01 <= at < due + 0.3


def test_a_cancelled_callback_never_runs_and_the_next_still_does() -> None:
    dog = Watchdog()
    ran: list[int] = []
    done = threading.Event()
    start = time.monotonic()
    tickets = [dog.call_at(start + 0.1 + n * 0.01, lambda n=n: ran.append(n)) for n in range(50)]
    for ticket in tickets[:-1]:
        dog.cancel(ticket)
    dog.call_at(start + 0.7, done.set)
    assert done.wait(5)
    assert ran == [49]
