"""How much the line holds, against its ceiling, measured side by side in one run.

Each target runs on its own gunicorn server tree, all with the same options: bare Flask
answering fixed TwiML (`bench/bare_flask.py`, the ceiling), then `meterline serve` on SQLite
and on PostgreSQL. Each call is a caller whose number is bound to one account with `--meters`
meters: it keys a value and confirms it for every meter, then the status callback. Per target:

1. saturation: `--calls` calls, `--concurrency` at once, no pause. Throughput, webhook latency,
   and CPU per webhook of the client, the server (master + workers) and PostgreSQL's backends.
   The server's CPU per webhook over bare Flask's is the headline: it does not depend on the
   client. Throughput is compared with the bare ceiling of the same run.
2. think time: `--pause-calls` calls at once, each "listening" `--pause` s to every prompt
   (starts spread over 4 x pause): webhook latency p99.
3. PostgreSQL only, afterwards: round trips and statements per webhook, counted on the wire by
   a proxy (`bench/pg_count.py`) over `--count-calls` calls placed one at a time against a
   1-worker, 1-thread server (the count does not depend on the load).

The default client (`bench/webhook_client.py`) signs every request before the clock starts
and runs as `--processes` forked processes writing raw sockets, each webhook on a new
connection as Twilio's come (`--keep-alive` reuses one per call); its CPU per webhook is
printed beside the server's. `--client phone` uses the full simulated phone instead
(`ivr.simulator.phone.SimulatedCall`: requests + XML parsing, threads in this process).

    python bench/load.py                         # everything, SQLite and PostgreSQL
    python bench/load.py --database postgresql --pause-calls 0
    python bench/load.py --calls 600 --processes 4 --workers 4 --threads 8
    python bench/load.py --rounds 8              # the CPU ratio alone, phases taken in turn

`--rounds N` replaces the phases with N saturation phases per target, every server up at
once and the targets taken in turn, each ratio against the bare phase of its own round: on a
machine whose speed drifts, the ratio's median and spread over N rounds.
`--floor` (with `--rounds`) adds the floor of issue 9 on each database as two more targets
(`bench/floor_flask.py`: the form, one HMAC, the real flow, its JSON and TwiML, the state in
one table; nothing stored, none of the line's guarantees).

PostgreSQL runs in its own database, emptied by the script (its name must end in "load"):
    createdb -h 127.0.0.1 -U postgres meterline_load

Readings stored are counted in the database afterwards: exactly one per call and meter, none
twice, none that a caller heard accepted missing.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
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

from bench import breakdown, pg_count, webhook_client  # noqa: E402
from ivr.simulator.phone import CallError, SimulatedCall, scripted  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Account, Base, Meter, Phone, Reading  # noqa: E402

TOKEN = "load-test-token-" + "0" * 16
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/meterline_load"
HISTORY = ("100", "103", "106", "109")  # monthly, the last a month ago: 112 is plausible
APOLOGY = "техническая ошибка"
STORED = "Принято."  # said after each confirmed reading


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
    breakdown: dict[str, float] = field(default_factory=dict)  # --breakdown: worker totals

    @property
    def per_minute(self) -> float:
        """Completed calls per minute."""
        return self.completed / self.seconds * 60 if self.seconds else 0.0

    @property
    def per_second(self) -> float:
        """Webhooks answered per second."""
        return len(self.latencies) / self.seconds if self.seconds else 0.0

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


def _proc_cpu(pid: int) -> tuple[float, float, int, str]:
    """(CPU seconds, of which in the kernel, parent pid, command name) of one process; zeros
    if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0, 0, ""
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / TICK, int(rest[12]) / TICK, int(rest[1]), name


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def cpu_snapshot(server_pid: int, database: str = "") -> dict[str, float]:
    """CPU seconds so far of this process, the server's tree and our database's backends."""
    server = kernel = postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        seconds, system, parent, name = _proc_cpu(pid)
        if pid == server_pid or parent == server_pid:
            server += seconds
            kernel += system
        elif database and name.startswith("postgres") and f" {database} " in _cmdline(pid):
            postgres += seconds
    usage = os.times()
    cpu = {"client": usage.user + usage.system, "server": server, "server kernel": kernel}
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
        self.breakdown: Path | None = None  # where bench/breakdown.py's workers write
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
            except (requests.ConnectionError, requests.Timeout):  # a worker still starting
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


def line_settings(url: str, public_url: str, workdir: Path) -> dict[str, str]:
    """The line's settings for a benchmark: the database at `url`, the window open all month
    and day, no hourly limit in the way (every bench's server, in process or not)."""
    return {
        "METERLINE_DATABASE_URL": url, "TWILIO_AUTH_TOKEN": TOKEN,
        "METERLINE_PUBLIC_URL": public_url, "METERLINE_SECRET_KEY": "load",
        "METERLINE_WINDOW": "1-31", "METERLINE_OPERATOR_HOURS": "00:00-23:59",
        "METERLINE_CALLS_PER_HOUR": "10000", "METERLINE_AUDIO_DIR": str(workdir / "audio"),
    }  # fmt: skip


def python(opts: argparse.Namespace, breakdown: Path) -> list[str]:
    """The interpreter a server runs on: under bench/breakdown.py with --breakdown."""
    if not opts.breakdown:
        return [sys.executable]
    shutil.rmtree(breakdown, ignore_errors=True)
    return [sys.executable, str(ROOT / "bench" / "breakdown.py"), str(breakdown)]


def our_server(
    url: str,
    opts: argparse.Namespace,
    workdir: Path,
    extra: dict[str, str] | None = None,
    turns: bool = True,
) -> Server:
    """`meterline serve` on the database at `url`, window open all month and day (plus `extra`);
    without `turns`, its webhooks' turns left out (bench/without_turns.py)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "TWILIO_"))}
    env.update(line_settings(url, f"http://127.0.0.1:{port}", workdir))
    env.update(extra or {})
    suffix = "" if turns else "-without-turns"
    out = workdir / f"breakdown-ours{suffix}"
    wrapper = [] if turns else [str(ROOT / "bench" / "without_turns.py")]
    argv = [*python(opts, out), *wrapper, "-m", "ivr", "serve", "--port", str(port),
            "--workers", str(opts.workers), "--threads", str(opts.threads)]  # fmt: skip
    parsed = make_url(url)
    name = parsed.get_backend_name()
    database = parsed.database or "" if name == "postgresql" else ""
    server = Server(argv, env, port, workdir / f"serve-{name}{suffix}.log", database)
    server.breakdown = out if opts.breakdown else None
    return server


def floor_server(url: str, opts: argparse.Namespace, workdir: Path) -> Server:
    """The floor (`bench/floor_flask.py`) on the database at `url`, the same gunicorn settings
    and the line's settings: what the issue's "floor" pieces cost, nothing of the line's
    guarantees."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "TWILIO_"))}
    env.update(line_settings(url, f"http://127.0.0.1:{port}", workdir))
    argv = [*python(opts, workdir / "breakdown-floor"), str(ROOT / "bench" / "floor_flask.py"),
            "--port", str(port), "--database-url", url, "--meters", str(opts.meters),
            "--workers", str(opts.workers), "--threads", str(opts.threads)]  # fmt: skip
    name = make_url(url).get_backend_name()
    database = (make_url(url).database or "") if name == "postgresql" else ""
    return Server(argv, env, port, workdir / f"floor-{name}.log", database)


def bare_server(opts: argparse.Namespace, workdir: Path) -> Server:
    """The bare Flask ceiling under the same gunicorn settings."""
    port = free_port()
    argv = [*python(opts, workdir / "breakdown-bare"), str(ROOT / "bench" / "bare_flask.py"),
            "--port", str(port),
            "--workers", str(opts.workers), "--threads", str(opts.threads),
            "--steps", str(opts.meters * 2)]  # fmt: skip
    server = Server(argv, dict(os.environ), port, workdir / "bare.log")
    server.breakdown = workdir / "breakdown-bare" if opts.breakdown else None
    return server


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


@dataclass
class Load:
    """One phase: how many calls, how many at once, pause per prompt, starts spread over."""

    calls: int
    concurrency: int
    pause: float
    ramp: float


def drive_phone(label: str, server: Server, numbers: list[str], load: Load, meters: int) -> Figures:
    """The full simulated phone, from threads in this process."""
    figures = Figures(label=label, calls=load.calls)
    lock = threading.Lock()
    answers = keys(meters)
    live = [0]
    started = time.perf_counter()

    def run(indexed: tuple[int, str]) -> None:
        index, caller = indexed
        # Real calls do not all ring in the same millisecond: starts spread over the ramp.
        time.sleep(max(0.0, started + load.ramp * index / load.calls - time.perf_counter()))
        with lock:
            live[0] += 1
            figures.peak_live = max(figures.peak_live, live[0])
        latencies, confirmed, error = one_call(server.url, caller, load.pause, answers)
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
    with ThreadPoolExecutor(max_workers=load.concurrency) as pool:
        list(pool.map(run, enumerate(numbers)))
    figures.seconds = time.perf_counter() - started
    after = cpu_snapshot(server.process.pid, server.database)
    figures.cpu = {k: after[k] - before[k] for k in after}
    return figures


def drive_raw(
    label: str, server: Server, numbers: list[str], load: Load, opts: argparse.Namespace
) -> Figures:
    """Prebuilt signed requests over raw sockets, from `--processes` processes."""
    host = server.url.removeprefix("http://")
    address = (host.split(":")[0], int(host.split(":")[1]))
    keep_alive = opts.keep_alive and not load.pause
    scripts = [
        webhook_client.call_script(server.url, host, TOKEN, number, opts.meters, keep_alive)
        for number in numbers
    ]
    plan = webhook_client.Plan(address, opts.processes, load.concurrency, load.pause,
                               load.ramp, keep_alive)  # fmt: skip
    before = cpu_snapshot(server.process.pid, server.database)
    result, started, ended = webhook_client.run(scripts, plan)
    after = cpu_snapshot(server.process.pid, server.database)
    figures = Figures(label=label, calls=load.calls, peak_live=load.concurrency)
    figures.cpu = {k: after[k] - before[k] for k in after}
    figures.cpu["client"] = result.cpu
    figures.seconds = ended - started
    figures.latencies = result.latencies
    figures.errors = result.errors
    figures.completed, figures.confirmed = result.completed, result.confirmed
    figures.apologies = result.apologies
    return figures


def drive(
    label: str, server: Server, callers: Iterator[str], load: Load, opts: argparse.Namespace
) -> Figures:
    """Run one phase with the chosen client; gather the figures."""
    numbers = [next(callers) for _ in range(load.calls)]
    if opts.client == "phone":
        return drive_phone(label, server, numbers, load, opts.meters)
    if load.concurrency == 1:  # one client process, or its two would place two at once
        opts = argparse.Namespace(**{**vars(opts), "processes": 1})
    return drive_raw(label, server, numbers, load, opts)


ONE_AT_A_TIME = "one at a time"


def phases(opts: argparse.Namespace) -> list[tuple[str, Load]]:
    """Warm-up, (unless --single-calls 0) one call at a time, saturation and (unless
    --pause-calls 0) think time."""
    warm = Load(opts.workers * 4, opts.workers * 2, 0.0, 0.0)
    runs = [("warm-up", warm)]
    if opts.single_calls:
        runs.append((ONE_AT_A_TIME, Load(opts.single_calls, 1, 0.0, 0.0)))
    runs.append(("saturation", Load(opts.calls, opts.concurrency, 0.0, 0.0)))
    if opts.pause_calls:
        runs.append(
            (f"{opts.pause:g} s pauses",
             Load(opts.pause_calls, opts.pause_calls, opts.pause, opts.pause * 4))
        )  # fmt: skip
    return runs


def calls_needed(opts: argparse.Namespace) -> int:
    """Callers (accounts) every phase together needs."""
    return sum(load.calls for _, load in phases(opts))


def worker_totals(out: Path | None) -> dict[str, float]:
    """The workers' figures so far (bench/breakdown.py), once their next write is in."""
    if out is None:
        return {}
    time.sleep(1.2)  # each worker writes its figures once a second
    return breakdown.read(out)


# --- the report ---


def report(figures: Figures) -> None:
    """One block of figures."""
    pct = figures.percentile
    done = max(1, len(figures.latencies))
    lines = [
        f"\n== {figures.label}",
        f"  calls: {figures.calls}, completed: {figures.completed} in {figures.seconds:.1f} s"
        f" -> {figures.per_minute:.0f} calls/min, {figures.per_second:.0f} webhooks/s;"
        f" at most {figures.peak_live} at once",
        f"  webhook latency ms: p50 {pct(50):.1f}  p95 {pct(95):.1f}  p99 {pct(99):.1f}"
        f"  max {pct(100):.1f}  ({len(figures.latencies)} requests)",
        "  CPU ms per webhook: "
        + ", ".join(f"{k} {v / done * 1000:.2f}" for k, v in figures.cpu.items()),
        f"  errors: {len(figures.errors)} client, {figures.apologies} apologies, "
        f"{figures.server_errors} server tracebacks",
    ]
    lines += [f"    {error}" for error in sorted(set(figures.errors))[:5]]
    counted = figures.breakdown
    if counted.get("requests"):
        per = {k: v / counted["requests"] for k, v in counted.items()}
        ms = {k: v * 1000 for k, v in per.items()}
        if per["app"]:
            thread = (f"{ms['app']:.2f} the app (SQL {ms['sql']:.2f} in {per['sql_batches']:.1f} "
                      f"batches) + {ms['handle'] - ms['app']:.2f} gunicorn, in the request's "
                      "thread")  # fmt: skip
        else:  # bare Flask has no body guard to count its app at
            thread = f"{ms['handle']:.2f} the request's thread (app and gunicorn)"
        lines.append(
            f"  worker CPU ms per webhook: {ms['process']:.2f} in all = {thread} + "
            f"{ms['process'] - ms['handle']:.2f} other threads; context switches "
            f"{per['voluntary']:.1f} voluntary, {per['involuntary']:.1f} not"
        )
    if figures.expected is not None and figures.stored is not None:
        ok = figures.stored == figures.expected and figures.duplicates == 0
        lost = max(0, figures.confirmed - figures.stored)
        lines.append(
            f"  readings stored: {figures.stored} of {figures.expected} expected "
            f"({figures.confirmed} confirmed to callers, {lost} of them lost), "
            f"{figures.duplicates} duplicated -> {'OK' if ok else 'MISMATCH'}"
        )
    print("\n".join(lines), flush=True)


def cpu_per_webhook(figures: Figures, who: str = "server") -> float:
    """Milliseconds of `who`'s CPU per webhook."""
    return figures.cpu.get(who, 0.0) / max(1, len(figures.latencies)) * 1000


def summary(results: dict[str, dict[str, Figures]], trips: tuple[float, float] | None) -> None:
    """The targets' figures side by side, as ratios of the bare ceiling of this run."""
    bare = results.get("bare Flask", {}).get("saturation")
    print("\n== summary (ratios to bare Flask in this run)")
    print(f"  {'target':<20} {'server CPU/webhook':>18} {'x bare':>7} {'+PG CPU':>8} "
          f"{'webhooks/s':>11} {'x bare':>7} {'client CPU':>11} {'p99 paused':>11}")  # fmt: skip
    for name, by_phase in results.items():
        sat = by_phase["saturation"]
        cpu = cpu_per_webhook(sat)
        rate = sat.per_second
        paused = next((f for phase, f in by_phase.items() if phase.endswith("pauses")), None)
        ratio = cpu / cpu_per_webhook(bare) if bare else float("nan")
        bare_rate = bare.per_second if bare else float("nan")
        pg = f"{cpu_per_webhook(sat, 'postgres'):.2f} ms" if "postgres" in sat.cpu else "-"
        p99 = f"{paused.percentile(99):.1f} ms" if paused else "-"
        client = cpu_per_webhook(sat, "client")
        print(f"  {name:<20} {cpu:>15.2f} ms {ratio:>7.2f} {pg:>8} {rate:>11.0f} "
              f"{rate / bare_rate:>7.2f} {client:>8.2f} ms {p99:>11}")  # fmt: skip
    bare_single = results.get("bare Flask", {}).get(ONE_AT_A_TIME)
    if any(ONE_AT_A_TIME in by_phase for by_phase in results.values()):
        print("  one call at a time (no contention), server CPU per webhook: " + ", ".join(
            f"{name} {cpu_per_webhook(by_phase[ONE_AT_A_TIME]):.2f} ms"
            + (f" ({cpu_per_webhook(by_phase[ONE_AT_A_TIME]) / cpu_per_webhook(bare_single):.2f}"
               " x bare)" if bare_single and name != "bare Flask" else "")
            for name, by_phase in results.items() if ONE_AT_A_TIME in by_phase
        ))  # fmt: skip
    if trips is not None:
        print(f"  PostgreSQL round trips per webhook: {trips[0]:.2f}; "
              f"statements per webhook: {trips[1]:.2f}")  # fmt: skip


def run_target(
    name: str, url: str | None, opts: argparse.Namespace, workdir: Path, turns: bool = True
) -> dict[str, Figures]:
    """Serve one target, run every phase against it, count what was stored."""
    engine: Engine | None = None
    if url is None:
        server = bare_server(opts, workdir)
        callers: Iterator[str] = (f"+7000{secrets.randbelow(10**7):07d}" for _ in iter(int, 1))
    else:
        engine = prepare(url)
        seed(engine, calls_needed(opts), opts.meters)
        callers = (caller_number(n) for n in range(calls_needed(opts)))
        server = our_server(url, opts, workdir, turns=turns)
    label = "bare Flask" if url is None else f"meterline on {name}"
    results: dict[str, Figures] = {}
    try:
        for phase, load in phases(opts):
            stored_before = count_stored(engine)[0] if engine is not None else 0
            counted = server.breakdown if phase == "saturation" else None
            before = worker_totals(counted)
            figures = drive(f"{label}: {phase}", server, callers, load, opts)
            after = worker_totals(counted)
            figures.breakdown = {k: after[k] - before.get(k, 0.0) for k in after}
            if engine is not None and phase != "warm-up":
                stored, figures.duplicates = count_stored(engine)
                figures.stored = stored - stored_before
                figures.expected = load.calls * opts.meters
            if phase != "warm-up":
                results[phase] = figures
    finally:
        tracebacks = server.stop()
        if engine is not None:
            engine.dispose()
    for figures in results.values():
        figures.server_errors = tracebacks
        report(figures)
    return results


def interleaved(targets: list[str], opts: argparse.Namespace, workdir: Path) -> None:
    """`--rounds N`: every target's server up at once, then N saturation phases each, taken
    in turn (bare Flask, SQLite, PostgreSQL; the order rotated every round), each ratio
    against the bare phase of its own round. This machine's speed drifts over minutes: phases
    seconds apart see much the same machine, and N of them show how far the ratio moves.
    Every phase is checked as in the main run (no client errors or apologies, the readings
    heard accepted stored once each), and the servers' logs for tracebacks at the end."""
    load = Load(opts.calls, opts.concurrency, 0.0, 0.0)
    warm = Load(opts.workers * 4, opts.workers * 2, 0.0, 0.0)
    needed = warm.calls + opts.rounds * load.calls
    servers: dict[str, tuple[Server, Engine | None, Iterator[str]]] = {}
    try:
        anyone = (f"+7000{secrets.randbelow(10**7):07d}" for _ in iter(int, 1))
        servers["bare Flask"] = (bare_server(opts, workdir), None, anyone)
        for name in targets:
            url = (opts.pg_url if name == "postgresql"
                   else f"sqlite:///{workdir / 'interleaved.db'}")  # fmt: skip
            engine = prepare(url)
            seed(engine, needed, opts.meters)
            servers[name] = (our_server(url, opts, workdir), engine,
                             (caller_number(n) for n in range(needed)))  # fmt: skip
        if opts.floor:  # after `prepare`, which empties PostgreSQL's schema
            for name in targets:
                url = (opts.pg_url if name == "postgresql"
                       else f"sqlite:///{workdir / 'floor.db'}")  # fmt: skip
                servers[f"floor {name}"] = (floor_server(url, opts, workdir), None,
                                            (caller_number(n) for n in range(needed)))  # fmt: skip
        for name, (server, _, callers) in servers.items():
            drive(f"{name}: warm-up", server, callers, warm, opts)
        names = list(servers)
        measured = names[1:]  # all but bare Flask
        ratios: dict[str, list[float]] = {name: [] for name in measured}
        rates: dict[str, list[float]] = {name: [] for name in measured}
        for round_ in range(opts.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            cpu: dict[str, float] = {}
            kernel: dict[str, float] = {}
            rate: dict[str, float] = {}
            for name in order:
                server, engine, callers = servers[name]
                stored_before = count_stored(engine)[0] if engine is not None else 0
                figures = drive(f"{name}: round {round_ + 1}", server, callers, load, opts)
                problems = len(figures.errors) + figures.apologies
                if engine is not None:
                    stored, doubled = count_stored(engine)
                    if stored - stored_before != load.calls * opts.meters or doubled:
                        problems += 1
                if problems:
                    report(figures)
                    sys.exit(f"round {round_ + 1}, {name}: errors, apologies or readings "
                             "not as heard")  # fmt: skip
                cpu[name] = cpu_per_webhook(figures)
                kernel[name] = cpu_per_webhook(figures, "server kernel")
                rate[name] = figures.per_second
            for name in measured:
                ratios[name].append(cpu[name] / cpu["bare Flask"])
                rates[name].append(rate[name] / rate["bare Flask"])
            print(f"  round {round_ + 1} (order: {', '.join(order)}): server CPU ms per "
                  "webhook " + ", ".join(f"{n} {cpu[n]:.2f}" for n in names) + "; x bare "
                  + ", ".join(f"{n} {ratios[n][-1]:.2f}" for n in measured)
                  + "; of it in the kernel " + ", ".join(f"{n} {kernel[n]:.2f}" for n in names)
                  + "; webhooks/s " + ", ".join(f"{n} {rate[n]:.0f}" for n in names),
                  flush=True)  # fmt: skip
    finally:
        tracebacks = 0
        for server, engine, _ in servers.values():
            tracebacks += server.stop()
            if engine is not None:
                engine.dispose()
    if tracebacks:
        sys.exit(f"{tracebacks} tracebacks in the servers' logs ({workdir})")
    print(
        f"\n== interleaved saturation, {opts.rounds} rounds of {opts.calls} calls "
        "(server CPU per webhook over bare Flask's of the same round)"
    )
    for name, values in ratios.items():
        print(f"  {name:<12} median {statistics.median(values):.2f} x, min "
              f"{min(values):.2f}, max {max(values):.2f}; "
              f"{sum(v <= 3 for v in values)} of {len(values)} rounds at or under 3 x; "
              f"throughput median {statistics.median(rates[name]):.2f} of bare's")  # fmt: skip
    for name in targets:  # --floor: what our webhook costs over the floor's, round by round
        if f"floor {name}" in ratios:
            over = [ours / floor for ours, floor in zip(ratios[name], ratios[f"floor {name}"],
                                                         strict=True)]  # fmt: skip
            print(f"  {name:<12} over its floor: median {statistics.median(over):.2f} x, min "
                  f"{min(over):.2f}, max {max(over):.2f}")  # fmt: skip


def count_round_trips(url: str, opts: argparse.Namespace, workdir: Path) -> tuple[float, float]:
    """(round trips, statements) per webhook on PostgreSQL, calls placed one at a time."""
    target = make_url(url)
    proxy = pg_count.CountingProxy((target.host or "127.0.0.1", target.port or 5432))
    engine = prepare(url)
    seed(engine, opts.count_calls + 2, opts.meters)
    engine.dispose()
    callers = (caller_number(n) for n in range(opts.count_calls + 2))
    single = argparse.Namespace(**{**vars(opts), "workers": 1, "threads": 1, "processes": 1})
    server = our_server(proxy.url_for(url), single, workdir)
    try:
        drive("round trips: warm-up", server, callers, Load(2, 1, 0.0, 0.0), single)
        proxy.reset()
        load = Load(opts.count_calls, 1, 0.0, 0.0)
        figures = drive("round trips", server, callers, load, single)
        turns, statements = proxy.turns, proxy.statements
    finally:
        server.stop()
        proxy.close()
    webhooks = max(1, len(figures.latencies))
    print(f"\n== PostgreSQL on the wire: {opts.count_calls} calls one at a time, {webhooks} "
          f"webhooks ({figures.completed} completed, {len(figures.errors)} errors)\n"
          f"  round trips per webhook: {turns / webhooks:.2f} ({turns} in all); statements "
          f"per webhook: {statements / webhooks:.2f} ({statements}); per call: "
          f"{turns / max(1, opts.count_calls):.1f} round trips", flush=True)  # fmt: skip
    return turns / webhooks, statements / webhooks


def machine() -> str:
    """nproc, RAM, Python and the PostgreSQL server's version if reachable."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs, {ram:.0f} GiB RAM, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; load average {load[0]:.2f} "
            "(other processes share these CPUs)")  # fmt: skip


def main() -> None:
    """Parse options, run every target, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=PG_DEFAULT, help="database name must end in 'load'")
    parser.add_argument("--calls", type=int, default=400, help="calls at saturation (400)")
    parser.add_argument("--concurrency", type=int, default=200, help="calls at once (200)")
    parser.add_argument("--pause-calls", type=int, default=200,
                        help="calls at once with pauses (200; 0 skips the phase)")  # fmt: skip
    parser.add_argument("--pause", type=float, default=2.0, help="seconds per prompt (2)")
    parser.add_argument("--single-calls", type=int, default=150,
                        help="calls placed one at a time, for the CPU without contention "
                             "(150; 0 skips the phase)")  # fmt: skip
    parser.add_argument("--count-calls", type=int, default=10,
                        help="calls for the PostgreSQL round-trip count (10; 0 skips)")  # fmt: skip
    parser.add_argument("--meters", type=int, default=2, help="meters per account (2)")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--client", choices=["raw", "phone"], default="raw")
    parser.add_argument("--processes", type=int, default=webhook_client.default_processes(),
                        help="client processes for --client raw (one per core)")  # fmt: skip
    parser.add_argument("--keep-alive", action="store_true",
                        help="a connection per call, not per webhook")  # fmt: skip
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-Flask ceiling")
    parser.add_argument("--breakdown", action="store_true",
                        help="servers under bench/breakdown.py: where a worker's CPU goes at "
                             "saturation (the app, its SQL, gunicorn, other threads)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=0,
                        help="instead of the phases: N saturation phases per target, every "
                             "server up at once, taken in turn (0: the phases)")  # fmt: skip
    parser.add_argument("--floor", action="store_true",
                        help="with --rounds: also the floor of issue 9 (bench/floor_flask.py: "
                             "the form, one HMAC, the flow, JSON, TwiML, the state in one "
                             "table) on each database")  # fmt: skip
    parser.add_argument("--without-turns", action="store_true",
                        help="SQLite served a second time with the webhooks' turns "
                             "(ivr/voice/gate.py) left out, for comparison")  # fmt: skip
    opts = parser.parse_args()
    if not 1 <= opts.calls <= 5000 or not 1 <= opts.concurrency <= 1000:
        sys.exit("--calls must be 1..5000 and --concurrency 1..1000")
    if not 0 <= opts.pause_calls <= 1000:
        sys.exit("--pause-calls must be 0..1000")
    if not 0 <= opts.rounds <= 50:
        sys.exit("--rounds must be 0..50")
    if opts.floor and not opts.rounds:
        sys.exit("--floor runs in --rounds mode only")
    if opts.rounds and opts.no_bare:
        sys.exit("--rounds compares with bare Flask: drop --no-bare")
    if not 0 <= opts.single_calls <= 1000:
        sys.exit("--single-calls must be 0..1000")
    if not (make_url(opts.pg_url).database or "").endswith("load"):
        sys.exit("refusing to empty a database whose name does not end in 'load'")

    workdir = Path(tempfile.mkdtemp(prefix="meterline-load-"))
    print(f"machine: {machine()}")
    phases_run = (f"{opts.rounds} rounds of saturation, {opts.calls} calls, {opts.concurrency} "
                  "at once, the targets in turn" if opts.rounds else
                  f"{opts.single_calls} calls one at a time; saturation {opts.calls} calls, "
                  f"{opts.concurrency} at once; then {opts.pause_calls} at once with "
                  f"{opts.pause} s pauses")  # fmt: skip
    print(f"load: {phases_run}; {opts.meters} meters each; "
          f"gunicorn gthread {opts.workers} workers x {opts.threads} threads; client "
          f"{opts.client}" + (f" x {opts.processes} processes" if opts.client == "raw" else "")
          + (", keep-alive" if opts.keep_alive else ", a connection per webhook")
          + f"; logs in {workdir}", flush=True)  # fmt: skip
    targets = ["sqlite", "postgresql"] if opts.database == "both" else [opts.database]
    if opts.rounds:  # instead of the phases above
        interleaved(targets, opts, workdir)
        return
    results: dict[str, dict[str, Figures]] = {}
    if not opts.no_bare:
        results["bare Flask"] = run_target("bare", None, opts, workdir)
    for name in targets:
        url = opts.pg_url if name == "postgresql" else f"sqlite:///{workdir / 'load.db'}"
        results[name] = run_target(name, url, opts, workdir)
        if opts.without_turns and name == "sqlite":  # PostgreSQL's webhooks take no turns
            url = f"sqlite:///{workdir / 'load-without-turns.db'}"
            results["sqlite, no turns"] = run_target(
                "sqlite without turns", url, opts, workdir, turns=False
            )
    trips = None
    if "postgresql" in targets and opts.count_calls:
        trips = count_round_trips(opts.pg_url, opts, workdir)
    summary(results, trips)


if __name__ == "__main__":
    main()
