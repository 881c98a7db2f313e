"""How much the line holds: N simultaneous simulated calls against `meterline serve`.

Each call is a signed, Twilio-like phone (`ivr.simulator.phone.SimulatedCall`) from a caller
whose number is bound to one account with `--meters` meters: it keys a value and confirms it
for every meter, then the status callback. The same client pattern is then run against a bare
Flask app returning a fixed TwiML document under the same gunicorn settings (the ceiling).

    python bench/load.py                                  # SQLite and PostgreSQL, 200 calls
    python bench/load.py --database sqlite --calls 400 --concurrency 200 --pause 0
    python bench/load.py --pause 2 --workers 4 --threads 8

PostgreSQL runs in its own database, emptied by the script (its name must end in "load"):
    createdb -h 127.0.0.1 -U postgres meterline_load

Printed per target: completed calls per minute, webhook latency p50/p95/p99 (every HTTP
request of a call, status callback included), errors, and readings stored vs expected
(counted in the database afterwards: exactly one per call and meter, no duplicates).
The client runs in this process (threads) and competes with the server for the CPUs.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import requests
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.simulator.phone import CallError, SimulatedCall, scripted  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Account, Base, Meter, Phone, Reading  # noqa: E402

TOKEN = "load-test-token-" + "0" * 16
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/meterline_load"
HISTORY = ("100", "103", "106", "109")  # monthly, the last a month ago: 112 is plausible
APOLOGY = "техническая ошибка"
STORED = "Показание принято"


@dataclass
class Figures:
    """What one target did under the load."""

    label: str
    calls: int = 0
    completed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    apologies: int = 0
    server_errors: int = 0
    peak_live: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    confirmed: int = 0  # "reading accepted" heard by callers: each must be stored
    stored: int | None = None
    expected: int | None = None
    duplicates: int | None = None

    @property
    def per_minute(self) -> float:
        """Completed calls per minute."""
        return self.completed / self.seconds * 60 if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """The p-th percentile of webhook latency, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


# --- the database ---


def prepare(url: str) -> Engine:
    """A fresh schema at head (SQLite: a new file; PostgreSQL: `public` recreated)."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(url)
    return engine


def caller_number(n: int) -> str:
    """The n-th caller's number (valid Russian mobile, E.164)."""
    return f"+7921{n:07d}"


def seed(engine: Engine, accounts: int, meters: int) -> None:
    """Bulk-insert accounts, each with one phone and `meters` meters with 4 months of history."""
    now = datetime.now(UTC)
    kinds = ("hot_water", "cold_water", "heat")
    with engine.begin() as conn:
        conn.execute(
            insert(Account),
            [{"id": n + 1, "number": f"{50000000 + n}", "address": f"ул. Мира, д. {n % 90 + 1}",
              "supplier": "ВТС", "created_at": now} for n in range(accounts)],
        )  # fmt: skip
        phones = [{"account_id": n + 1, "e164": caller_number(n)} for n in range(accounts)]
        conn.execute(insert(Phone), phones)
        meter_rows = []
        for n in range(accounts):
            for m in range(meters):
                kind = kinds[m % len(kinds)]
                meter_rows.append({
                    "id": n * meters + m + 1, "account_id": n + 1, "serial": f"LD{n:07d}-{m}",
                    "kind": kind, "unit": "Гкал" if kind == "heat" else "м3",
                    "integer_digits": 5, "decimal_digits": 3, "supplier": "ВТС",
                    "location": "кухня", "active": True,
                })  # fmt: skip
        conn.execute(insert(Meter), meter_rows)
        history = []
        for row in meter_rows:
            for i, value in enumerate(HISTORY):
                taken = now - timedelta(days=30 * (len(HISTORY) - i))
                history.append({
                    "meter_id": row["id"], "value": Decimal(value), "taken_at": taken,
                    "period": taken.strftime("%Y-%m"), "source": "import",
                    "status": "accepted", "created_at": now,
                })  # fmt: skip
        conn.execute(insert(Reading), history)
        if conn.dialect.name == "postgresql":  # explicit ids above: move the sequences on
            for table in ("accounts", "meters"):
                conn.execute(
                    text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )  # noqa: E501


def count_stored(engine: Engine) -> tuple[int, int]:
    """Readings stored by the line, and how many (meter, period) pairs hold more than one."""
    with engine.connect() as conn:
        ivr = Reading.source == "ivr"
        stored = conn.scalar(select(func.count()).select_from(Reading).where(ivr))
        doubled = (
            select(Reading.meter_id)
            .where(Reading.source == "ivr")
            .group_by(Reading.meter_id, Reading.period)
            .having(func.count() > 1)
            .subquery()
        )
        duplicates = conn.scalar(select(func.count()).select_from(doubled))
    return int(stored or 0), int(duplicates or 0)


def empty(engine: Engine) -> None:
    """Delete every row (between the warm-up and the measured run nothing needs to go)."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


# --- CPU accounting (Linux /proc) ---

TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> tuple[float, int, str]:
    """(CPU seconds, parent pid, command name) of one process; zeros if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0, ""
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / TICK, int(rest[1]), name


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def cpu_snapshot(server_pid: int, database: str = "") -> dict[str, float]:
    """CPU seconds so far of this process, the server's tree and our database's backends."""
    server = postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        seconds, parent, name = _proc_cpu(pid)
        if pid == server_pid or parent == server_pid:
            server += seconds
        elif database and name.startswith("postgres") and f" {database} " in _cmdline(pid):
            postgres += seconds
    usage = os.times()
    cpu = {"client": usage.user + usage.system, "server": server}
    if database:
        cpu["postgres"] = postgres
    return cpu


# --- the server ---


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A gunicorn server (ours or the bare app) as a subprocess on a free loopback port."""

    def __init__(
        self, argv: list[str], env: dict[str, str], port: int, log: Path, database: str = ""
    ):
        self.url = f"http://127.0.0.1:{port}"
        self.database = database  # a PostgreSQL database name, for CPU accounting
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                requests.get(self.url + "/voice/status", timeout=1).close()
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start in 30 s")

    def stop(self) -> int:
        """Stop gunicorn; returns how many tracebacks its log holds."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        return self.log_path.read_text(errors="replace").count("Traceback")


def our_server(url: str, opts: argparse.Namespace, workdir: Path) -> Server:
    """`meterline serve` on the database at `url`, window open all month and day."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "TWILIO_"))}
    env.update({
        "METERLINE_DATABASE_URL": url, "TWILIO_AUTH_TOKEN": TOKEN,
        "METERLINE_PUBLIC_URL": f"http://127.0.0.1:{port}", "METERLINE_SECRET_KEY": "load",
        "METERLINE_WINDOW": "1-31", "METERLINE_OPERATOR_HOURS": "00:00-23:59",
        "METERLINE_CALLS_PER_HOUR": "10000", "METERLINE_AUDIO_DIR": str(workdir / "audio"),
    })  # fmt: skip
    argv = [sys.executable, "-m", "ivr", "serve", "--port", str(port),
            "--workers", str(opts.workers), "--threads", str(opts.threads)]  # fmt: skip
    parsed = make_url(url)
    name = parsed.get_backend_name()
    database = parsed.database or "" if name == "postgresql" else ""
    return Server(argv, env, port, workdir / f"serve-{name}.log", database)


def bare_server(opts: argparse.Namespace, workdir: Path) -> Server:
    """The bare Flask ceiling under the same gunicorn settings."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "bare_flask.py"), "--port", str(port),
            "--workers", str(opts.workers), "--threads", str(opts.threads),
            "--steps", str(opts.meters * 2)]  # fmt: skip
    return Server(argv, dict(os.environ), port, workdir / "bare.log")


# --- the client ---


def keys(meters: int) -> str:
    """Key a plausible value and confirm it, for every meter."""
    return " ".join(["112*5# 1"] * meters)


def one_call(
    base_url: str, caller: str, pause: float, answers: str
) -> tuple[list[float], int, str]:
    """Place one call: its latencies, readings confirmed to the caller, an error ("" if none)."""
    with requests.Session() as session:
        if pause > 0:
            # Webhooks seconds apart do not share a connection (Twilio's come from many
            # hosts); reusing one idle for gunicorn's keepalive (5 s) races its close.
            session.headers["Connection"] = "close"
        phone = SimulatedCall(
            base_url=base_url, token=TOKEN, caller=caller, session=session, pause=pause
        )
        error = ""
        try:
            phone.run(scripted(answers))
        except (CallError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
    transcript = phone.transcript
    confirmed = sum(STORED in text for text in transcript.heard)
    if not error and transcript.said(APOLOGY):
        error = "apology"
    return transcript.latencies, confirmed, error


def drive(
    label: str, server: Server, callers: Iterator[str], calls: int, opts: argparse.Namespace
) -> Figures:
    """Run `calls` calls, at most `concurrency` at once; gather the figures."""
    figures = Figures(label=label, calls=calls)
    lock = threading.Lock()
    answers = keys(opts.meters)
    numbers = [next(callers) for _ in range(calls)]

    live = [0]
    started = time.perf_counter()

    def run(indexed: tuple[int, str]) -> None:
        index, caller = indexed
        # Real calls do not all ring in the same millisecond: starts spread over --ramp.
        time.sleep(max(0.0, started + opts.ramp * index / calls - time.perf_counter()))
        with lock:
            live[0] += 1
            figures.peak_live = max(figures.peak_live, live[0])
        latencies, confirmed, error = one_call(server.url, caller, opts.pause, answers)
        with lock:
            live[0] -= 1
            figures.confirmed += confirmed
            figures.latencies.extend(latencies)
            if error == "apology":
                figures.apologies += 1
            elif error:
                figures.errors.append(error)
            else:
                figures.completed += 1

    before = cpu_snapshot(server.process.pid, server.database)
    with ThreadPoolExecutor(max_workers=opts.concurrency) as pool:
        list(pool.map(run, enumerate(numbers)))
    figures.seconds = time.perf_counter() - started
    after = cpu_snapshot(server.process.pid, server.database)
    figures.cpu = {k: after[k] - before[k] for k in after}
    return figures


def warm_up(server: Server, callers: Iterator[str], opts: argparse.Namespace) -> None:
    """A few calls first, so every worker has built its app and pool before we measure."""
    warm = argparse.Namespace(
        **{**vars(opts), "concurrency": opts.workers * 2, "pause": 0, "ramp": 0}
    )
    drive("warm-up", server, callers, opts.workers * 4, warm)


# --- the report ---


def report(figures: Figures) -> None:
    """One block of figures."""
    pct = figures.percentile
    done = max(1, len(figures.latencies))
    lines = [
        f"\n== {figures.label}",
        f"  calls: {figures.calls}, completed: {figures.completed} in {figures.seconds:.1f} s"
        f" -> {figures.per_minute:.0f} calls/min; at most {figures.peak_live} at once",
        f"  webhook latency ms: p50 {pct(50):.1f}  p95 {pct(95):.1f}  p99 {pct(99):.1f}"
        f"  max {pct(100):.1f}  ({len(figures.latencies)} requests)",
        "  CPU ms per request: "
        + ", ".join(f"{k} {v / done * 1000:.2f}" for k, v in figures.cpu.items()),
        f"  errors: {len(figures.errors)} client, {figures.apologies} apologies, "
        f"{figures.server_errors} server tracebacks",
    ]
    lines += [f"    {error}" for error in sorted(set(figures.errors))[:5]]
    if figures.expected is not None and figures.stored is not None:
        ok = figures.stored == figures.expected and figures.duplicates == 0
        lost = max(0, figures.confirmed - figures.stored)
        lines.append(
            f"  readings stored: {figures.stored} of {figures.expected} expected "
            f"({figures.confirmed} confirmed to callers, {lost} of them lost), "
            f"{figures.duplicates} duplicated -> {'OK' if ok else 'MISMATCH'}"
        )
    print("\n".join(lines))


def run_database(name: str, url: str, opts: argparse.Namespace, workdir: Path) -> Figures:
    """Seed, serve, warm up, load, count."""
    engine = prepare(url)
    total = opts.calls + opts.workers * 4
    seed(engine, total, opts.meters)
    numbers = (caller_number(n) for n in range(total))
    server = our_server(url, opts, workdir)
    try:
        warm_up(server, numbers, opts)
        warmed, _ = count_stored(engine)
        figures = drive(f"meterline on {name}", server, numbers, opts.calls, opts)
    finally:
        tracebacks = server.stop()
    figures.server_errors = tracebacks
    stored, duplicates = count_stored(engine)
    figures.stored, figures.duplicates = stored - warmed, duplicates
    figures.expected = opts.calls * opts.meters
    engine.dispose()
    return figures


def machine() -> str:
    """nproc, RAM, Python and the PostgreSQL server's version if reachable."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPUs, {ram:.0f} GiB RAM, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")  # fmt: skip


def main() -> None:
    """Parse options, run every target, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=PG_DEFAULT, help="database name must end in 'load'")
    parser.add_argument("--calls", type=int, default=200, help="calls to place (default 200)")
    parser.add_argument("--concurrency", type=int, default=200, help="calls at once (200)")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds per prompt (0)")
    parser.add_argument(
        "--ramp", type=float, default=None, help="seconds over which calls start (4 x pause)"
    )
    parser.add_argument("--meters", type=int, default=2, help="meters per account (2)")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-Flask ceiling")
    opts = parser.parse_args()
    if opts.ramp is None:
        opts.ramp = opts.pause * 4
    if not 1 <= opts.calls <= 5000 or not 1 <= opts.concurrency <= 1000:
        sys.exit("--calls must be 1..5000 and --concurrency 1..1000")
    if not (make_url(opts.pg_url).database or "").endswith("load"):
        sys.exit("refusing to empty a database whose name does not end in 'load'")

    workdir = Path(tempfile.mkdtemp(prefix="meterline-load-"))
    print(f"machine: {machine()}")
    print(f"load: {opts.calls} calls, {opts.concurrency} at once, {opts.meters} meters each, "
          f"pause {opts.pause} s, starts over {opts.ramp} s; gunicorn gthread "
          f"{opts.workers} workers x {opts.threads} threads; logs in {workdir}")  # fmt: skip
    results: list[Figures] = []
    bare: Figures | None = None
    if not opts.no_bare:
        server = bare_server(opts, workdir)
        try:
            fake = (f"+7000{secrets.randbelow(10**7):07d}" for _ in iter(int, 1))
            warm_up(server, fake, opts)
            bare = drive("bare Flask, fixed TwiML (ceiling)", server, fake, opts.calls, opts)
        finally:
            bare.server_errors = server.stop() if bare else server.stop()
        report(bare)
    targets = ["sqlite", "postgresql"] if opts.database == "both" else [opts.database]
    for name in targets:
        url = opts.pg_url if name == "postgresql" else f"sqlite:///{workdir / 'load.db'}"
        figures = run_database(name, url, opts, workdir)
        results.append(figures)
        report(figures)
        if bare is not None and bare.per_minute:
            print(f"  throughput vs bare Flask: {figures.per_minute / bare.per_minute:.2f}")


if __name__ == "__main__":
    main()
