"""What Python's cyclic garbage collector costs a webhook, with and without the heap frozen as
`meterline serve`'s workers freeze it (`ivr.commands.serve.freeze_heap`).

Each line is a fresh process: a freshly seeded SQLite line, the app built as a worker builds
it, a warm-up call, then (for "frozen") `freeze_heap()`, then `--calls` calls of
`bench/load.py` (prebuilt, signed, handed straight to the WSGI app, as `bench/step_cpu.py`
does). The collector's callbacks time every collection, by generation. The two kinds of line
alternate for `--rounds` rounds, so both see the same machine.

A full (generation 2) collection walks every object the collector tracks: in a worker that
is mostly what was built at start-up (the app, its modules, the libraries), which lives as
long as the worker. It comes rarely (when enough objects have outlived two younger
collections) and costs much; whether one comes within `--calls` depends on what the run left
alive. So each line also times one full collection after its calls.

    python bench/gc_cost.py                      # 3 rounds of 1,000 calls (6,000 webhooks)
    python bench/gc_cost.py --rounds 5 --calls 1500
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.step_cpu import scripts, seeded_line, serve  # noqa: E402


@dataclass
class Line:
    """One process's figures."""

    webhooks: int
    cpu_ms: float  # CPU a webhook, the collector's included
    tracked: int  # objects the collector tracks when the calls begin
    frozen: int  # objects frozen out of its walks
    collections: list[int]  # by generation
    gc_ms: list[float]  # time in them, by generation
    longest_ms: float
    full_ms: float  # one full collection made after the calls

    @property
    def collector_us(self) -> float:
        """Time in the collector a webhook."""
        return sum(self.gc_ms) / self.webhooks * 1000

    def __str__(self) -> str:
        young, middle, full = self.collections
        return (f"tracked {self.tracked:>7}, frozen {self.frozen:>7}; collections by generation "
                f"{young}/{middle}/{full}, ms {'/'.join(f'{ms:.1f}' for ms in self.gc_ms)}; "
                f"longest {self.longest_ms:.1f} ms; {self.collector_us:.1f} µs a webhook; CPU "
                f"{self.cpu_ms:.3f} ms a webhook; a full collection afterwards "
                f"{self.full_ms:.1f} ms")  # fmt: skip


def child(frozen: bool, calls: int) -> Line:
    """One line in this process: its collections and CPU per webhook."""
    from bench import load
    from ivr import create_app
    from ivr.commands.serve import freeze_heap

    callers = [load.caller_number(n) for n in range(calls + 1)]
    url = seeded_line("sqlite", "", len(callers), 2, "gccost")
    app = create_app()
    batches = scripts(callers, 2)
    serve(app, batches[0])  # warm, as a worker answers its first call
    if frozen:
        freeze_heap()
    pauses: list[list[float]] = [[], [], []]
    started_at = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started_at[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started_at[0])

    tracked = len(gc.get_objects())
    gc.callbacks.append(timed)
    cpu = time.process_time()
    for batch in batches[1:]:
        serve(app, batch)
    cpu = time.process_time() - cpu
    gc.callbacks.remove(timed)
    webhooks = sum(len(b) for b in batches[1:])
    full = time.perf_counter()
    gc.collect()  # what one full collection costs now, whether or not one came by itself
    full = time.perf_counter() - full
    shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)
    return Line(
        webhooks=webhooks,
        cpu_ms=cpu / webhooks * 1000,
        tracked=tracked,
        frozen=gc.get_freeze_count(),
        collections=[len(p) for p in pauses],
        gc_ms=[sum(p) * 1000 for p in pauses],
        longest_ms=max((max(p) for p in pauses if p), default=0.0) * 1000,
        full_ms=full * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000, help="calls per line (1000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["as-is", "frozen"], help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        print(json.dumps(asdict(child(opts.child == "frozen", opts.calls))))
        return
    print(f"SQLite, {opts.calls} calls of 6 webhooks per line, {opts.rounds} rounds, "
          "each line a fresh process")  # fmt: skip
    per: dict[str, list[float]] = {"as-is": [], "frozen": []}
    full: dict[str, list[float]] = {"as-is": [], "frozen": []}
    for number in range(1, opts.rounds + 1):
        print(f"round {number}")
        for mode in ("as-is", "frozen") if number % 2 else ("frozen", "as-is"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--calls", str(opts.calls)],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            got = Line(**json.loads(out.strip().splitlines()[-1]))
            print(f"  {mode:<8} {got}", flush=True)
            per[mode].append(got.collector_us)
            full[mode].append(got.full_ms)

    def medians(figures: dict[str, list[float]]) -> str:
        return ", ".join(f"{mode} {statistics.median(v):.1f}" for mode, v in figures.items())

    print(f"medians: µs a webhook in the collector {medians(per)}; "
          f"ms a full collection {medians(full)}")  # fmt: skip


if __name__ == "__main__":
    main()
