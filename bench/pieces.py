"""The CPU of each piece of a webhook that is not database work, one at a time, on the inputs
of a real call: what `bench/step_cpu.py`'s figure is made of besides SQL.

A call of `bench/load.py` (a value and its confirmation per meter, then the status callback) is
served once against SQLite while the pieces' inputs are recorded; then each piece is timed
alone, many times over: Flask's request handling around a view that does nothing (in our app
and in bare Flask), the form, the signature check, the state's JSON both ways, the flow's step
and the TwiML.

    python bench/pieces.py
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from bench.bare_flask import create_bare_app  # noqa: E402
from bench.step_cpu import PUBLIC, scripts, seeded_line, serve  # noqa: E402
from ivr.guards import BODY  # noqa: E402


def timed(label: str, work: Callable[[], object], rounds: int) -> float:
    """Microseconds per run of `work`, the best of five batches."""
    work()
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(rounds):
            work()
        best = min(best, (time.process_time() - started) / rounds * 1e6)
    print(f"{label:<52} {best:8.1f} µs", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2000)
    opts = parser.parse_args()
    seeded_line("sqlite", "", 4, 2, "pieces")
    from flask import Response

    from callflows.state import CallState
    from ivr import create_app
    from ivr.request import current_request
    from ivr.voice import signature, twiml

    # Record what the pieces see during one real call.
    states: list[str] = []
    renders: list[tuple[Any, Any, str]] = []
    real_from_json, real_render = CallState.from_json, twiml.render

    def from_json(raw: str) -> CallState:
        states.append(raw)
        return real_from_json(raw)

    def render(actions: Any, catalogue: Any, step_url: str, *said: Any) -> Any:
        renders.append((actions, catalogue, step_url))
        return real_render(actions, catalogue, step_url, *said)

    CallState.from_json = staticmethod(from_json)  # type: ignore[method-assign,assignment]
    twiml.render = render  # type: ignore[assignment]
    app = create_app()
    calls = scripts([load.caller_number(n) for n in range(3)], 2)
    serve(app, calls[0])
    serve(app, calls[1])
    CallState.from_json = real_from_json  # type: ignore[method-assign]
    twiml.render = real_render

    rounds = opts.rounds
    print(f"per webhook of a call of {len(calls[0])} webhooks, best of 5 x {rounds}:")
    step_env = calls[2][1]
    body = step_env["_body"]

    # Flask around a view that does nothing: our app's hooks and middleware against bare Flask.
    ours = create_app()
    ours.add_url_rule("/voice/_nothing", "nothing", lambda: Response("", 200), methods=["POST"])
    bare = create_bare_app(PUBLIC, 4)
    bare.add_url_rule("/voice/_nothing", "nothing", lambda: Response("", 200), methods=["POST"])
    nothing = dict(step_env, PATH_INFO="/voice/_nothing")

    def serve_one(wsgi: Any, env: dict[str, Any]) -> Callable[[], object]:
        def run() -> object:
            e = dict(env)
            e["wsgi.input"] = io.BytesIO(e.pop("_body"))
            chunks = wsgi(e, lambda *_a: None)
            out = b"".join(chunks)
            getattr(chunks, "close", lambda: None)()
            return out

        return run

    timed("bare Flask, a view that does nothing", serve_one(bare, nothing), rounds)
    timed("our app, a view that does nothing", serve_one(ours, nothing), rounds)

    def guarded(env: dict[str, Any]) -> dict[str, Any]:
        """The environ as the body guard hands it on (ivr/guards.py): the body read whole."""
        e = dict(env)
        e[BODY] = e.pop("_body")
        e["wsgi.input"] = io.BytesIO(e[BODY])
        return e

    def form_of(env: dict[str, Any]) -> Callable[[], object]:
        def run() -> object:
            e = guarded(env)
            with ours.request_context(e):
                return current_request().form

        return run

    def context_only() -> object:
        e = guarded(step_env)
        with ours.request_context(e):
            return None

    timed("request context alone", context_only, rounds)
    timed("  + request.form (over the context)", form_of(step_env), rounds)

    def check() -> object:
        e = guarded(step_env)
        with ours.request_context(e):
            # The request itself, as the webhook's wrapper passes it (not Flask's proxy,
            # whose every attribute read costs about a microsecond: round five).
            assert signature.is_valid(current_request())
            return None

    timed("  + form + signature check (over the context)", check, rounds)
    print(f"  (form body {len(body)} bytes)")
    for raw in states[:4]:
        state = real_from_json(raw)
        timed(f"CallState.from_json ({state.step}, {len(raw)} chars)",
              lambda raw=raw: real_from_json(raw), rounds)  # fmt: skip
        timed(f"CallState.to_json ({state.step})", state.to_json, rounds)
    # The prompts as the app's renderer keeps them, warmed by the first run (if it keeps them).
    said = [twiml.Said()] if hasattr(twiml, "Said") else []
    for actions, catalogue, step_url in renders[:5]:
        names = ",".join(type(a).__name__ for a in actions)
        run = functools.partial(real_render, actions, catalogue, step_url, *said)
        timed(f"twiml.render ({names})"[:52], run, rounds)


if __name__ == "__main__":
    main()
