"""The webhooks' turns (ivr/voice/gate.py) on a WSGI app that only records who is inside."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from ivr.voice.gate import WebhookGate


class Recorder:
    """A WSGI app that stays `hold` seconds and counts how many requests are inside at once;
    `inside` runs in the request (to step out, say)."""

    def __init__(self, hold: float, inside: Callable[[], None] | None = None) -> None:
        self.hold, self.inside = hold, inside
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        if self.inside is not None:
            self.inside()
        else:
            time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        start("200 OK", [])
        return [b""]


def _together(app: Callable[..., Iterable[bytes]], requests: list[tuple[str, str]]) -> list[float]:
    """Each (method, path) in its own thread, all at once; how long each took."""
    took = [0.0] * len(requests)

    def one(n: int, method: str, path: str) -> None:
        started = time.monotonic()
        app({"REQUEST_METHOD": method, "PATH_INFO": path}, lambda *_: None)
        took[n] = time.monotonic() - started

    threads = [threading.Thread(target=one, args=(n, *r)) for n, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return took


def test_webhooks_go_in_one_at_a_time() -> None:
    app = Recorder(0.1)
    took = _together(WebhookGate(wait=5).around(app), [("POST", "/voice/step")] * 3)
    assert app.most == 1
    assert max(took) >= 0.28  # the last waited for two turns


@pytest.mark.parametrize(("method", "path"), [("GET", "/voice/stream"), ("POST", "/operator/")])
def test_what_is_not_a_webhook_does_not_queue(method: str, path: str) -> None:
    app = Recorder(0.2)
    _together(WebhookGate(wait=5).around(app), [(method, path)] * 3)
    assert app.most == 3


def test_a_turn_that_takes_too_long_lets_the_next_webhook_in_after_the_wait() -> None:
    app = Recorder(0.6)
    took = _together(WebhookGate(wait=0.1).around(app), [("POST", "/voice/step")] * 2)
    assert app.most == 2
    assert max(took) < 1.0  # not 0.6 s of waiting and 0.6 s of work


def test_a_webhook_that_steps_out_lets_others_in_and_then_queues_again() -> None:
    gate = WebhookGate(wait=5)
    order: list[str] = []
    outside = threading.Event()

    def waits_for_speech() -> None:
        with gate.stepped_out():
            order.append("out")
            outside.set()
            time.sleep(0.3)
        order.append("back")

    def works() -> None:
        order.append("work")
        time.sleep(0.05)

    first = gate.around(Recorder(0, waits_for_speech))
    second = gate.around(Recorder(0, works))
    runner = threading.Thread(target=_together, args=(first, [("POST", "/voice/step")]))
    runner.start()
    assert outside.wait(5)
    took = _together(second, [("POST", "/voice/step")])[0]
    runner.join()
    assert order == ["out", "work", "back"]
    assert took < 0.2  # it did not wait for the 0.3 s outside


def test_stepping_out_without_a_turn_does_nothing() -> None:
    gate = WebhookGate(wait=0.1)
    with gate.stepped_out():
        pass
    with gate.admitted(), gate.stepped_out():
        pass
    # the turn was handed back: a new one is free at once
    started = time.monotonic()
    with gate.admitted():
        assert time.monotonic() - started < 0.05
