"""Run a command of ours with the webhooks' turns (ivr/voice/gate.py) left out: what
`bench/load.py --without-turns` compares `meterline serve` with, in the same run.

    python bench/without_turns.py -m ivr serve --port 5001

Bench-only: the line has no setting to turn them off.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from ivr.voice.gate import WebhookGate

    WebhookGate.around = lambda self, app: app  # type: ignore[method-assign]
    if sys.argv[1:2] != ["-m"]:
        sys.exit("usage: without_turns.py -m MODULE [ARGS]")
    sys.argv = [sys.argv[2], *sys.argv[3:]]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
