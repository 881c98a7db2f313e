"""The app's own CPU per webhook, without gunicorn or a client: where `bench/load.py`'s ratio
comes from, to find what to make cheaper.

The calls of `bench/load.py` (a value and its confirmation per meter, then the status
callback), prebuilt and signed, are handed straight to the WSGI app in this process, one after
another. Bare Flask's app (`bench/bare_flask.py`) is measured the same way in the same run.
`--profile` prints cProfile's top entries for our app.

    python bench/step_cpu.py --database sqlite --calls 300
    python bench/step_cpu.py --database postgresql --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load, webhook_client  # noqa: E402
from bench.bare_flask import create_bare_app  # noqa: E402

PUBLIC = "http://127.0.0.1:5000"


def environ(raw: bytes) -> dict[str, Any]:
    """A WSGI environ for one prebuilt request (what gunicorn would hand the app)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    method, target, _ = lines[0].split(" ")
    path, _, query = target.partition("?")
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "_body": body,
    }  # fmt: skip
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
            env[key] = value
        else:
            env["HTTP_" + key] = value
    return env


def serve(app: Callable[..., Iterable[bytes]], environs: list[dict[str, Any]]) -> list[bytes]:
    """Hand each request to the app, as a WSGI server would; the bodies it answered."""
    bodies = []
    for env in environs:
        env = dict(env)
        env["wsgi.input"] = io.BytesIO(env.pop("_body"))
        status: list[str] = []

        def start_response(s: str, _headers: Any, _exc: Any = None, status: list[str] = status):
            status.append(s)

        chunks = app(env, start_response)
        body = b"".join(chunks)
        close = getattr(chunks, "close", None)
        if close:
            close()
        if not status[0].startswith("200"):
            raise SystemExit(f"{env['PATH_INFO']} answered {status[0]}")
        bodies.append(body)
    return bodies


def scripts(callers: list[str], meters: int) -> list[list[dict[str, Any]]]:
    """Every call's webhooks as WSGI environs."""
    out = []
    for caller in callers:
        hooks = webhook_client.call_script(PUBLIC, "127.0.0.1:5000", load.TOKEN, caller, meters,
                                           keep_alive=False)  # fmt: skip
        out.append([environ(h.request) for h in hooks])
    return out


def measure(label: str, app: Any, calls: list[list[dict[str, Any]]], profile: bool) -> float:
    """CPU ms per webhook over every call, one after another."""
    serve(app, calls[0])  # warm
    # Wall time (cProfile's default): a CPU-time timer costs a system call per function and
    # drowns the figures; waits for the database show up in psycopg's `wait`.
    profiler = cProfile.Profile() if profile else None
    count = sum(len(c) for c in calls[1:])
    started = time.process_time()
    if profiler:
        profiler.enable()
    for call in calls[1:]:
        for body, env in zip(serve(app, call), call, strict=True):
            if b"\xd1\x82\xd0\xb5\xd1\x85\xd0\xbd\xd0\xb8\xd1\x87\xd0\xb5\xd1\x81\xd0\xba" in body:
                raise SystemExit(f"apology at {env['PATH_INFO']}?{env['QUERY_STRING']}")
    if profiler:
        profiler.disable()
    cpu = (time.process_time() - started) / count * 1000
    print(f"{label:<24} {cpu:6.3f} ms CPU per webhook ({count} webhooks)", flush=True)
    if not profiler:
        print("  by webhook: " + ", ".join(f"{kind} {ms:.3f}" for kind, ms in by_kind(app, calls)))
    if profiler:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(45)
        print(stream.getvalue())
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(60)
        print(stream.getvalue())
    return cpu


def kind_of(index: int, length: int) -> str:
    """What the index-th webhook of a call is: incoming, a value, a confirmation, status."""
    if index == 0:
        return "incoming"
    if index == length - 1:
        return "status"
    return "value" if index % 2 else "confirm"


def by_kind(app: Any, calls: list[list[dict[str, Any]]]) -> list[tuple[str, float]]:
    """CPU ms per webhook of each kind, over the same calls placed again as new ones."""
    spent: dict[str, list[float]] = {}
    for call in calls[1:]:
        sid = "CA" + os.urandom(16).hex()  # a fresh CallSid: the same callers call again
        for index, env in enumerate(call):
            env = dict(env)
            body = env["_body"]
            old = body.split(b"CallSid=")[1].split(b"&")[0]
            env["_body"] = body.replace(old, sid.encode())
            env["HTTP_X_TWILIO_SIGNATURE"] = resign(env, old.decode(), sid)
            started = time.process_time()
            serve(app, [env])
            kind = kind_of(index, len(call))
            spent.setdefault(kind, []).append(time.process_time() - started)
    return [(kind, sum(v) / len(v) * 1000) for kind, v in spent.items()]


def resign(env: dict[str, Any], old_sid: str, new_sid: str) -> str:
    """The signature of the request with its CallSid changed."""
    from urllib.parse import parse_qsl

    fields = dict(parse_qsl(env["_body"].decode(), keep_blank_values=True))
    query = f"?{env['QUERY_STRING']}" if env["QUERY_STRING"] else ""
    return webhook_client.signature(load.TOKEN, PUBLIC + env["PATH_INFO"] + query, fields)


def use_line_settings(url: str, workdir: Path) -> None:
    """This process's environment as `meterline serve`'s in bench/load.py (and nothing of
    the caller's own METERLINE_ or TWILIO_ settings)."""
    for key in [k for k in os.environ if k.startswith(("METERLINE_", "TWILIO_"))]:
        del os.environ[key]
    os.environ.update(load.line_settings(url, PUBLIC, workdir))


def seeded_line(database: str, pg_url: str, accounts: int, meters: int,
                name: str) -> str:  # fmt: skip
    """A fresh database seeded with `accounts` callers (bench/load.py's), and this process's
    environment as `meterline serve`'s on it; its URL."""
    workdir = Path(tempfile.mkdtemp(prefix=f"meterline-{name}-"))
    url = pg_url if database == "postgresql" else f"sqlite:///{workdir / (name + '.db')}"
    engine = load.prepare(url)
    load.seed(engine, accounts, meters)
    engine.dispose()
    use_line_settings(url, workdir)
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=load.PG_DEFAULT)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--meters", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    opts = parser.parse_args()
    callers = [load.caller_number(n) for n in range(opts.calls + 1)]
    seeded_line(opts.database, opts.pg_url, len(callers), opts.meters, "stepcpu")
    from ivr import create_app

    ours = create_app()
    bare = create_bare_app(PUBLIC, opts.meters * 2)
    bare_calls = scripts([f"+7000{n:07d}" for n in range(opts.calls + 1)], opts.meters)
    bare_cpu = measure("bare Flask (in process)", bare, bare_calls, False)
    our_cpu = measure(f"meterline on {opts.database}", ours, scripts(callers, opts.meters),
                      opts.profile)  # fmt: skip
    print(f"ratio {our_cpu / bare_cpu:.2f} (without gunicorn and the socket, which both pay)")


if __name__ == "__main__":
    main()
