"""The floor for `bench/load.py --floor`: the least a webhook of ours could cost, served by
gunicorn with exactly the options `meterline serve` uses.

Issue 9 defines the floor as "bare Flask, the form, one HMAC, the flow, JSON, TwiML, and one
or two round trips". This app is that and nothing more, built from the line's own pieces:
- Flask's `request.form` (Werkzeug's parser) and the signature check of
  `ivr.voice.signature` (one HMAC-SHA1 over the public URL and the sorted fields);
- the real call flow (`callflows.flow.advance`) with the line's settings and a directory in
  memory: every caller has one account with `--meters` meters and the load's history;
- the state as JSON both ways (`CallState.to_json`/`from_json`) and the line's TwiML
  renderer (`ivr.voice.twiml.TwimlRenderer`) with the shipped Russian prompts;
- the call's state kept in one table by the database's own driver (sqlite3 or psycopg, no
  SQLAlchemy): an INSERT when a call comes in, a SELECT and an UPDATE each step, an UPDATE
  at the end (the keys read as `ivr.voice.hot_path` reads them). On SQLite the writes take
  turns in the process, as ours do (ivr/voice/gate.py).

What it leaves out is what the line exists for: readings are neither stored nor checked
against the ledger, no timeline, no flags, no stored replies for Twilio's retries, no race
settled on `seq`, no hourly limits. So it answers every confirmation with «Принято.» and
stores nothing: a measure of where our webhook's cost goes, never a line.

    python bench/floor_flask.py --port 5002 --database-url sqlite:////tmp/floor.db
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, request
from sqlalchemy.engine import make_url

from callflows.flow import advance
from callflows.model import (
    AccountInfo,
    CallEnded,
    CallStarted,
    Event,
    Keys,
    MeterInfo,
    PastReading,
    Silence,
)
from callflows.state import CallState
from ivr.commands.serve import gunicorn_options
from ivr.config import load_settings
from ivr.phones import normalize
from ivr.prompts import Catalogue
from ivr.voice.hot_path import DIGITS
from ivr.voice.signature import signature_matches
from ivr.voice.twiml import TwimlRenderer
from storage.ledger import period_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bare_flask import AppServer  # noqa: E402
from bench.load import HISTORY  # noqa: E402  (the load's meters: the same history)

KINDS = ("hot_water", "cold_water", "heat")


class MemoryDirectory:
    """The flow's directory without a database: one account per caller, the same meters."""

    def __init__(self, meters: int, timezone: Any, window: tuple[int, int]):
        self.timezone, self.window = timezone, window
        now = datetime.now(UTC)
        history = tuple(
            PastReading(Decimal(v), now - timedelta(days=30 * (len(HISTORY) - i)))
            for i, v in enumerate(HISTORY)
        )
        self.meters = tuple(
            MeterInfo(id=m + 1, serial=f"LD0000000-{m}", kind=KINDS[m % 3],  # type: ignore[arg-type]
                      unit="Гкал" if KINDS[m % 3] == "heat" else "м3", integer_digits=5,
                      decimal_digits=3, location="кухня", history=history)
            for m in range(meters)
        )  # fmt: skip

    def period_of(self, moment: datetime) -> str:
        return period_of(moment, self.timezone, self.window)

    def accounts_for_phone(self, e164: str, period: str) -> list[AccountInfo]:
        number = e164[-8:]
        return [AccountInfo(int(number), number, "ул. Мира, д. 1", "ВТС", self.meters)]

    def account_by_number(self, number: str, period: str) -> AccountInfo | None:
        return None

    def reserve_guess(self, now: datetime) -> bool:
        return True

    def release_guess(self, now: datetime) -> None:
        return None


class StateTable:
    """A call's state by CallSid, one table, the driver's own connection per thread."""

    def __init__(self, url: str):
        parsed = make_url(url)
        self.pg = parsed.get_backend_name() == "postgresql"
        self.mark = "%s" if self.pg else "?"
        self._url = parsed
        self._local = threading.local()
        # SQLite: one writer at a time; in turns inside the process, as ours (gate.py).
        self._lock: Any = nullcontext() if self.pg else threading.Lock()
        with self._cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS floor_calls "
                        "(sid varchar(64) PRIMARY KEY, state text NOT NULL)")  # fmt: skip

    def _connect(self) -> Any:
        if self.pg:
            import psycopg

            url = self._url
            return psycopg.connect(host=url.host, port=url.port or 5432, user=url.username,
                                   dbname=url.database, autocommit=True)  # fmt: skip
        conn = sqlite3.connect(self._url.database or ":memory:", isolation_level=None,
                               check_same_thread=False)  # fmt: skip
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        with self._lock:
            cur = conn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def insert(self, sid: str, state: str) -> None:
        with self._cursor() as cur:
            cur.execute(f"INSERT INTO floor_calls (sid, state) VALUES ({self.mark}, "
                        f"{self.mark}) ON CONFLICT (sid) DO NOTHING", (sid, state))  # fmt: skip

    def load(self, sid: str) -> str | None:
        with self._cursor() as cur:
            cur.execute(f"SELECT state FROM floor_calls WHERE sid = {self.mark}", (sid,))
            row = cur.fetchone()
        return None if row is None else str(row[0])

    def update(self, sid: str, state: str) -> None:
        with self._cursor() as cur:
            cur.execute(f"UPDATE floor_calls SET state = {self.mark} WHERE sid = {self.mark}",
                        (state, sid))  # fmt: skip


def create_floor_app(database_url: str, meters: int) -> Flask:
    """The three webhooks of a call, each the floor's pieces and nothing else."""
    settings = load_settings(os.environ)
    token, public = settings.twilio_auth_token or "", settings.public_url
    policy = settings.policy(speech=False)
    directory = MemoryDirectory(meters, settings.timezone, settings.window)
    renderer = TwimlRenderer(Catalogue.load())
    table = StateTable(database_url)
    app = Flask(__name__)

    def signed() -> None:
        query = request.query_string.decode("latin-1")
        url = public + request.path + (f"?{query}" if query else "")
        given = request.headers.get("X-Twilio-Signature", "")
        if not signature_matches(token, url, request.form, given):
            abort(403)

    def step_url(seq: int) -> str:
        return f"{public}/voice/step?seq={seq}"

    def twiml(body: str) -> Response:
        return Response(body, status=200, mimetype="text/xml")

    @app.post("/voice/incoming")
    def incoming() -> Response:
        signed()
        now = datetime.now(UTC)
        caller = normalize(request.form.get("From"), settings.city_code)
        state, actions = advance(None, CallStarted(caller, now), directory, policy)
        rendered = renderer.render(actions, step_url(1))
        table.insert(request.form["CallSid"], state.to_json())
        return twiml(rendered.reply)

    @app.post("/voice/step")
    def step() -> Response:
        signed()
        now, form = datetime.now(UTC), request.form
        seq = int(request.args.get("seq", "0"))
        stored = table.load(form.get("CallSid", ""))
        if stored is None:
            abort(400)
        digits = str(form.get("Digits", "") or "")
        if form.get("FinishedOnKey") == "#" and DIGITS.fullmatch(digits + "#"):
            digits += "#"
        event: Event = Keys(digits=digits, now=now) if digits else Silence(now=now)
        state, actions = advance(CallState.from_json(stored), event, directory, policy,
                                 owned=True)  # fmt: skip
        rendered = renderer.render(actions, step_url(seq + 1))
        table.update(form["CallSid"], state.to_json())
        return twiml(rendered.reply)

    @app.route("/voice/status", methods=["GET", "POST"])
    def status() -> Response:
        if request.method == "POST":
            signed()
            stored = table.load(request.form.get("CallSid", ""))
            if stored is not None:
                ended = CallEnded(status=request.form.get("CallStatus", ""), now=datetime.now(UTC))
                state, _ = advance(CallState.from_json(stored), ended, directory, policy,
                                   owned=True)  # fmt: skip
                table.update(request.form["CallSid"], state.to_json())
        return Response("", status=200)

    return app


def main() -> None:
    """Serve the floor app until stopped (settings from METERLINE_*/TWILIO_* as the line's)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5002)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--meters", type=int, default=2)
    parser.add_argument("--database-url", required=True)
    opts = parser.parse_args()
    StateTable(opts.database_url)  # the table exists before the workers race to create it
    options = gunicorn_options(opts.host, opts.port, opts.workers, opts.threads)
    AppServer(options, lambda: create_floor_app(opts.database_url, opts.meters)).run()


if __name__ == "__main__":
    main()
