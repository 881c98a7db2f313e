"""Time `meterline import meters|readings` and `meterline export readings` on a city-sized file.

Generates 100 000 accounts / 200 000 meters and 200 000 readings as CSV, runs the real commands
(subprocesses, as an operator would) against a fresh schema, and prints wall time, rows per second
and peak memory. On PostgreSQL it also times `COPY` of the same files into scratch tables, and
`COPY (the export query) TO STDOUT`: the database's own bulk path, the ceiling.

    python bench/import_export.py                               # SQLite, a temporary file
    createdb -h 127.0.0.1 -U postgres meterline_bench
    python bench/import_export.py --database-url postgresql://postgres@127.0.0.1:5432/meterline_bench

The script empties the database it is given, so it insists on a name ending in "bench".
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import make_engine
from storage.migrate import upgrade

METERS_HEADER = (
    "account,phones,address,supplier,meter_serial,meter_kind,unit,"
    "integer_digits,decimal_digits,verification_due,location"
).split(",")
READINGS_HEADER = ["meter_serial", "taken_at", "value"]
STREETS = ("Ленина", "Мира", "Герцена", "Ветошкина", "Пошехонское шоссе", "Окружное шоссе")


def write_meters(path: Path, accounts: int) -> list[str]:
    """Two meters per account (hot water, heat), one or two phones; returns the serials."""
    rng = random.Random(1)
    serials = []
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(METERS_HEADER)
        for n in range(accounts):
            number = f"{35000000 + n}"
            phones = f"8 (921) {n // 10000:03d}-{n % 10000 // 100:02d}-{n % 100:02d}"
            if n % 3 == 0:
                phones += f", {590000 + n % 10000}"
            address = f"г. Вологда, ул. {rng.choice(STREETS)}, д. {n % 97 + 1}, кв. {n % 211 + 1}"
            for kind, prefix, ints, decs in (("hot_water", "HW", 5, 3), ("heat", "HT", 4, 3)):
                serial = f"{prefix}{n:08d}"
                serials.append(serial)
                writer.writerow([
                    number, phones, address, "ВТС", serial, kind, "", ints, decs,
                    f"{2027 + n % 6}-0{1 + n % 9}-15", "кухня" if kind == "hot_water" else "",
                ])  # fmt: skip
    return serials


def write_readings(path: Path, serials: list[str]) -> None:
    """One reading per meter on 23 March 2026, decimal comma as Excel writes it."""
    rng = random.Random(2)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(READINGS_HEADER)
        for serial in serials:
            value = f"{rng.randint(0, 9999)},{rng.randint(0, 999):03d}"
            writer.writerow([serial, "23.03.2026 10:00", value])


def run_meterline(args: list[str], url: str, log: Path) -> tuple[float, float, float, str]:
    """Wall and CPU seconds, peak RSS in MB and the last output line of one `meterline` command.

    CPU time (ours, not the database server's) says more than wall time on a busy machine.
    """
    env = dict(os.environ, METERLINE_DATABASE_URL=url, METERLINE_SECRET_KEY="bench")
    env.setdefault("TWILIO_AUTH_TOKEN", "bench")
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(["meterline", *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    output = log.read_text(encoding="utf-8", errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"meterline {' '.join(args)} failed:\n{output[-2000:]}")
    last = (output.strip().splitlines() or [""])[-1]
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, last


def reset_schema(url: str) -> None:
    """A fresh schema at head: a new file on SQLite, `public` recreated on PostgreSQL."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)


def copy_ceiling(url: str, meters: Path, readings: Path, export: Path) -> dict[str, float]:
    """PostgreSQL's own bulk paths on the same data: COPY in, COPY (export query) out."""
    import psycopg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    timings = {}
    with psycopg.connect(dsn) as conn:
        for name, path, columns in (
            ("meters", meters, METERS_HEADER),
            ("readings", readings, READINGS_HEADER),
        ):
            conn.execute(f"DROP TABLE IF EXISTS bench_copy_{name}")
            conn.execute(
                f"CREATE TABLE bench_copy_{name} ({', '.join(c + ' text' for c in columns)})"
            )
            start = time.perf_counter()
            with conn.cursor() as cur:
                copy_sql = (
                    f"COPY bench_copy_{name} FROM STDIN (FORMAT csv, HEADER true, DELIMITER ';')"
                )
                with cur.copy(copy_sql) as copy, path.open("rb") as src:
                    while chunk := src.read(1 << 20):
                        copy.write(chunk)
            conn.commit()
            timings[f"COPY {name} in"] = time.perf_counter() - start
            conn.execute(f"DROP TABLE bench_copy_{name}")
        start = time.perf_counter()
        query = (
            "SELECT a.number, m.serial, m.kind, r.value, r.taken_at, r.source, c.call_sid "
            "FROM readings r JOIN meters m ON r.meter_id = m.id "
            "JOIN accounts a ON m.account_id = a.id LEFT JOIN calls c ON r.call_id = c.id "
            "WHERE r.period = '2026-03' AND r.status = 'accepted' AND r.replaced_by_id IS NULL "
            "ORDER BY a.number, m.serial, r.taken_at, r.id"
        )
        with conn.cursor() as cur, export.open("wb") as out:
            with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER true)") as copy:
                for data in copy:
                    out.write(data)
        timings["COPY export out"] = time.perf_counter() - start
    return timings


def run_steps(url: str, workdir: Path, rows: int) -> None:
    """Each command in turn, one line of figures each."""
    meters, readings = str(workdir / "meters.csv"), str(workdir / "readings.csv")
    steps = [
        ("import meters (empty db)", ["import", "meters", meters]),
        ("import meters (again, no change)", ["import", "meters", meters]),
        ("import readings", ["import", "readings", readings]),
        ("import readings (again, all dup)", ["import", "readings", readings]),
        ("export readings -o", ["export", "readings", "--period", "2026-03", "-o",
                                str(workdir / "out.csv")]),
    ]  # fmt: skip
    print(f"{'step':34} {'wall s':>7} {'rows/s':>8} {'cpu s':>6} {'peak MB':>7}  output")
    for label, args in steps:
        seconds, cpu, rss, last = run_meterline(args, url, workdir / "step.log")
        print(f"{label:34} {seconds:7.1f} {rows / seconds:8.0f} {cpu:6.1f} {rss:7.0f}  {last[:60]}")


def main() -> None:
    """Generate, import, export, and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, help="where the CSV files go (default: temporary)")
    opts = parser.parse_args()
    workdir = opts.workdir or Path(tempfile.mkdtemp(prefix="meterline-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    url = opts.database_url or f"sqlite:///{workdir / 'bench.db'}"
    if url.startswith("postgresql") and not (make_url(url).database or "").endswith("bench"):
        sys.exit("refusing to empty a database whose name does not end in 'bench'")
    if url.startswith("sqlite"):
        Path(make_url(url).database or "").unlink(missing_ok=True)

    meters, readings = workdir / "meters.csv", workdir / "readings.csv"
    start = time.perf_counter()
    serials = write_meters(meters, opts.accounts)
    write_readings(readings, serials)
    print(f"generated {opts.accounts} accounts, {len(serials)} meters, {len(serials)} readings "
          f"in {time.perf_counter() - start:.1f} s ({meters.stat().st_size / 1e6:.1f} MB + "
          f"{readings.stat().st_size / 1e6:.1f} MB)")  # fmt: skip
    reset_schema(url)
    print(f"database: {make_url(url).get_backend_name()}; machine: {platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average before: {os.getloadavg()[0]:.1f}")  # fmt: skip
    run_steps(url, workdir, len(serials))
    if url.startswith("postgresql"):
        for label, seconds in copy_ceiling(url, meters, readings, workdir / "copy.csv").items():
            print(f"{label + ' (ceiling)':34} {seconds:7.1f} {len(serials) / seconds:8.0f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}; files in {workdir}")


if __name__ == "__main__":
    main()
