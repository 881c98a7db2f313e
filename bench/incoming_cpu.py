"""The "a call comes in" webhook alone: the app's CPU per incoming in process, and (on
PostgreSQL) its round trips on the wire, counted by `bench/pg_count.py`'s proxy.

`bench/step_cpu.py` averages over every webhook of a call (the incoming is one of six); this
measures the first webhook only, so a change to it shows at full size. Each caller's call is
a fresh CallSid from a seeded account's phone (found by caller ID, as on the 23rd–25th).

    python bench/incoming_cpu.py --database sqlite --calls 300
    python bench/incoming_cpu.py --database postgresql --pg-url postgresql://…/xload
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.engine import make_url  # noqa: E402

from bench import load, pg_count  # noqa: E402
from bench.step_cpu import scripts, seeded_line, serve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=load.PG_DEFAULT)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--meters", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    parser.add_argument("--trip-calls", type=int, default=20, help="calls counted on the wire")
    opts = parser.parse_args()
    callers = [load.caller_number(n) for n in range(opts.calls + 1)]
    url = seeded_line(opts.database, opts.pg_url, len(callers), opts.meters, "incoming")
    from ivr import create_app

    firsts = [call[:1] for call in scripts(callers, opts.meters)]
    app = create_app()
    serve(app, firsts[0])  # warm: the pool's connection, prepared statements
    profiler = cProfile.Profile(time.process_time) if opts.profile else None  # CPU, not wall
    started = time.process_time()
    if profiler:
        profiler.enable()
    for first in firsts[1:]:
        body = serve(app, first)[0]
        if b"<Gather" not in body:
            raise SystemExit(f"no greeting: {body[:200]!r}")
    if profiler:
        profiler.disable()
    cpu = (time.process_time() - started) / opts.calls * 1000
    print(f"incoming on {opts.database}: {cpu:.3f} ms CPU per webhook ({opts.calls} calls)")
    if profiler:
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(50)
        print(stream.getvalue())
    if opts.database != "postgresql":
        return
    # Round trips: the same callers again (new CallSids) through the counting proxy, apart
    # from the CPU figure above (the proxy's threads would be counted in it).
    target = make_url(url)
    proxy = pg_count.CountingProxy((target.host or "127.0.0.1", target.port or 5432))
    os.environ["METERLINE_DATABASE_URL"] = proxy.url_for(url)
    counted = create_app()
    again = [call[:1] for call in scripts(callers[: opts.trip_calls + 1], opts.meters)]
    serve(counted, again[0])
    time.sleep(0.2)
    proxy.reset()
    for first in again[1:]:
        serve(counted, first)
    time.sleep(0.3)  # the proxy's threads forward the last replies
    calls = opts.trip_calls
    print(f"  round trips per incoming: {proxy.turns / calls:.2f}; statements per "
          f"incoming: {proxy.statements / calls:.2f} ({calls} calls)")  # fmt: skip
    proxy.close()


if __name__ == "__main__":
    main()
