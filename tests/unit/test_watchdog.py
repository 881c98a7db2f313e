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


def _gunicorn_body(received: bytes, length: int) -> object:
    """A gunicorn request body whose first `received` bytes came in with the headers."""
    from gunicorn.http.body import Body, LengthReader
    from gunicorn.http.unreader import IterUnreader

    unreader = IterUnreader([b"more to come"])
    unreader.unread(received)
    return Body(LengthReader(unreader, length))


def test_a_body_that_came_in_with_its_headers_is_known_to_be_in_memory() -> None:
    from ivr.guards import _buffered

    assert _buffered(_gunicorn_body(b"CallSid=CA1&Digits=1", 20)) == 20
    # What follows the body on the connection (a pipelined request) does not count.
    assert _buffered(_gunicorn_body(b"CallSid=CA1&Digits=1GET / HTTP/1.1", 20)) == 20
    # Part of it still on the way: the read gets its deadline.
    assert _buffered(_gunicorn_body(b"CallSid=CA", 20)) == 10
    assert _buffered(object()) == 0  # not gunicorn's: a deadline, as before
