"""The app's own CPU per webhook, without gunicorn or a client: where `bench/load.py`'s ratio
comes from, to find what to make cheaper.

The calls of `bench/load.py` (a value and its confirmation per meter, then the status
callback), prebuilt and signed, are handed straight to the WSGI app in this process, one after
another. Bare Flask's app (`bench/bare_flask.py`) is measured the same way in the same run.
`--profile` prints cProfile's top entries for our app; `--floor` measures the issue's floor
(`bench/floor_flask.py`) the same way. `--statements` times every statement
of the hot path (`storage.steps`) on its own and prints them by kind, per webhook; on SQLite
it also counts the pages each commit writes to the WAL, by table or index.

    python bench/step_cpu.py --database sqlite --calls 300
    python bench/step_cpu.py --database postgresql --profile
    python bench/step_cpu.py --database sqlite --statements
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


class _TimedCursor:
    """A driver cursor whose `execute` adds its thread CPU to `spent`, by statement kind."""

    def __init__(self, cursor: Any, spent: dict[str, list[float]]):
        self._cursor = cursor
        self._spent = spent

    def execute(self, sql: str, params: Any = ()) -> _TimedCursor:
        started = time.thread_time()
        self._cursor.execute(sql, params)
        entry = self._spent.setdefault(" ".join(sql.split()[:4])[:60], [0, 0.0])
        entry[0] += 1
        entry[1] += time.thread_time() - started
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _TimedConnection:
    """A driver connection handing out timed cursors."""

    def __init__(self, raw: Any, spent: dict[str, list[float]]):
        self._raw = raw
        self._spent = spent

    def cursor(self) -> _TimedCursor:
        return _TimedCursor(self._raw.cursor(), self._spent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def statements(database: str, url: str, calls: list[list[dict[str, Any]]]) -> None:
    """Serve `calls` with every hot-path statement timed (thread CPU), and on SQLite with the
    WAL left unchecked-pointed so that the pages each commit wrote can be counted."""
    import sqlite3
    import struct

    from ivr import create_app
    from storage import db, steps

    if database == "sqlite":
        pragmas = db._sqlite_pragmas

        def no_checkpoints(synchronous: str, conn: Any, record: Any) -> None:
            pragmas(synchronous, conn, record)
            conn.execute("PRAGMA wal_autocheckpoint=0")

        db._sqlite_pragmas = no_checkpoints  # type: ignore[assignment]
    app = create_app(serving=True)
    serve(app, calls[0])
    path = url.removeprefix("sqlite:///")
    if database == "sqlite":
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL from here on only
    spent: dict[str, list[float]] = {}
    raw = steps._raw
    steps._raw = lambda conn: _TimedConnection(raw(conn), spent)  # type: ignore[assignment]
    started = time.process_time()
    for call in calls[1:]:
        serve(app, call)
    cpu = time.process_time() - started
    steps._raw = raw  # type: ignore[assignment]
    webhooks = sum(len(c) for c in calls[1:])
    sql = sum(s for _, s in spent.values())
    print(f"meterline on {database}: {cpu / webhooks * 1e3:.3f} ms CPU per webhook, of which "
          f"the hot path's statements {sql / webhooks * 1e3:.3f} ms "
          f"({sum(n for n, _ in spent.values()) / webhooks:.2f} statements)")  # fmt: skip
    for kind, (count, seconds) in sorted(spent.items(), key=lambda kv: -kv[1][1]):
        print(f"  {count / webhooks:5.2f} a webhook  {seconds / count * 1e6:6.1f} us each  "
              f"{seconds / webhooks * 1e6:6.1f} us a webhook  {kind}")  # fmt: skip
    if database != "sqlite":
        return
    wal = Path(path + "-wal").read_bytes()
    page = struct.unpack(">I", wal[8:12])[0]
    ends = range(32, len(wal) - page - 23, 24 + page)  # 32-byte header, then 24-byte frame heads
    frames = [struct.unpack(">II", wal[at : at + 8]) for at in ends]
    commits = sum(1 for _, size in frames if size)  # a commit's last frame holds the db size
    with sqlite3.connect(path) as conn:
        names = dict(conn.execute("SELECT pageno, name FROM dbstat").fetchall())
    print(f"  WAL: {len(frames)} pages in {commits} commits, {len(frames) / commits:.1f} a "
          "commit; by table or index, a commit:")  # fmt: skip
    by_name: dict[str, int] = {}
    for number, _ in frames:
        name = names.get(number, "(freed or new)")
        by_name[name] = by_name.get(name, 0) + 1
    for name, count in sorted(by_name.items(), key=lambda kv: -kv[1]):
        print(f"    {count / commits:5.2f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=load.PG_DEFAULT)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--meters", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--statements", action="store_true",
                        help="each hot-path statement's CPU; SQLite's WAL pages")  # fmt: skip
    parser.add_argument("--floor", action="store_true",
                        help="also the issue's floor (bench/floor_flask.py), on the same kind "
                             "of database")  # fmt: skip
    opts = parser.parse_args()
    callers = [load.caller_number(n) for n in range(opts.calls + 1)]
    url = seeded_line(opts.database, opts.pg_url, len(callers), opts.meters, "stepcpu")
    if opts.statements:
        statements(opts.database, url, scripts(callers, opts.meters))
        return
    from ivr import create_app

    ours = create_app()
    bare = create_bare_app(PUBLIC, opts.meters * 2)
    bare_calls = scripts([f"+7000{n:07d}" for n in range(opts.calls + 1)], opts.meters)
    bare_cpu = measure("bare Flask (in process)", bare, bare_calls, False)
    our_cpu = measure(f"meterline on {opts.database}", ours, scripts(callers, opts.meters),
                      opts.profile)  # fmt: skip
    print(f"ratio {our_cpu / bare_cpu:.2f} (without gunicorn and the socket, which both pay)")
    if opts.floor:
        from bench.floor_flask import create_floor_app

        floor_url = url if opts.database == "postgresql" else url.replace(".db", "-floor.db")
        floor = create_floor_app(floor_url, opts.meters)
        floor_cpu = measure(f"floor on {opts.database}", floor, scripts(callers, opts.meters),
                            False)  # fmt: skip
        print(f"floor ratio {floor_cpu / bare_cpu:.2f}; ours over the floor "
              f"{our_cpu / floor_cpu:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
