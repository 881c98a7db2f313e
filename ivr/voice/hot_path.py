"""The webhooks on the hot path ("a call comes in", each step, the status callback): one
statement reads the call, one transaction writes the step (`storage.steps`), no ORM unless the
flow looks an account up.

The guarantees are the ORM path's: a replay gets its stored reply; two requests for one step
are settled by the conditional UPDATE on `seq` (the loser raises StepConflict and answers with
the winner's reply); readings go through the ledger (its meter lock first, its replace rule,
ON CONFLICT on the idempotency key), the whole step retried on a deadlock; nothing of a step
is written unless all of it is. Connections are not pinged when checked out: one found dead
(PostgreSQL restarted since it was pooled) is dropped with the rest of the pool, and the step
runs once more on a new one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from callflows.flow import advance
from callflows.model import (
    Action,
    CallEnded,
    CallStarted,
    Event,
    Keys,
    Silence,
    StoreReading,
    TransferEnded,
)
from callflows.state import CallState
from ivr.phones import mask
from ivr.voice.backend import Rendered
from ivr.voice.directory import SqlDirectory
from ivr.voice.effects import (
    CallRef,
    call_changes,
    collect_effects,
    new_reading,
    prompt_rows,
    stores_reading,
)
from ivr.voice.gate import GATE
from storage import ledger
from storage.incoming import IncomingStore, PhoneRows
from storage.ledger_retry import retrying
from storage.steps import CallRow, EventRow, FlagRow, StepStore, StepWrite

if TYPE_CHECKING:
    from ivr.voice.calls import VoiceService

log = logging.getLogger(__name__)
T = TypeVar("T")
DIGITS = re.compile(r"[0-9*#]{1,40}")
# The state of a call whose audio stream is connecting; the flow starts at the next step.
AWAITING_STREAM = "awaiting-stream"
CALL_WINDOW = timedelta(hours=1)  # the calls-per-hour limit's window (storage.counters)


class StepConflict(Exception):
    """Another worker served this step first."""


class _UsedKey(Exception):
    """The prebuilt store found its reading's idempotency key used (rolled back)."""


class BadRequest(Exception):
    """The webhook's fields make no sense (missing CallSid, unknown call, wrong step)."""


class HotPath:
    """The webhooks of a VoiceService on an autocommit engine without pre-ping."""

    def __init__(self, service: VoiceService, engine: Engine):
        self.service = service
        self.engine = engine
        self.store = StepStore(engine, waiting=GATE.stepped_out)
        self.incoming_store = IncomingStore(engine, self.store)

    def _retrying(self, what: str, work: Callable[[Connection], T]) -> T:
        """Run `work` on a connection: again on a deadlock or serialization failure (the flow
        is pure, the event the same: unheard by the caller), and once more on a new
        connection if the pooled one was dead."""

        def attempt() -> T:
            with self.engine.connect() as conn:
                return work(conn)

        try:
            return retrying(attempt)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("database connection lost; reconnecting for %s", what)
            self.engine.dispose()  # the other pooled connections predate the outage too
            return retrying(attempt)

    # --- the webhooks ---

    def incoming(self, sid: str, caller: str | None, now: datetime,
                 step_url: Callable[[int], str]) -> str | None:  # fmt: skip
        """ "A call comes in": the greeting; None if the caller is over the hourly limit (the
        service refuses it). IntegrityError if the same call came in at the same moment."""
        return self._retrying(
            f"call {sid}", lambda conn: self._incoming(conn, sid, caller, now, step_url)
        )

    def step(self, sid: str, form: Mapping[str, str], seq: int, now: datetime,
             step_url: Callable[[int], str]) -> str:  # fmt: skip
        """The reply to step `seq` of call `sid`; StepConflict if another request won it."""
        try:
            return self._retrying(
                f"step {seq} of {sid}",
                lambda conn: self._step(conn, sid, form, seq, now, step_url),
            )
        except _UsedKey:
            return self._retrying(
                f"step {seq} of {sid}",
                lambda conn: self._step(conn, sid, form, seq, now, step_url, prebuilt=False),
            )

    def close(self, sid: str, status: str, now: datetime) -> None:
        """The status callback: the call ends; flagged as dropped if the flow never finished."""
        self._retrying(f"status of {sid}", lambda conn: self._close(conn, sid, status, now))

    # --- internals ---

    def _directory(self, conn: Connection) -> SqlDirectory:
        return self.service.directory(conn)

    def _incoming(self, conn: Connection, sid: str, caller: str | None, now: datetime,
                  step_url: Callable[[int], str]) -> str | None:  # fmt: skip
        service = self.service
        bucket = service.call_bucket(caller)
        phone = (caller, service.directory_period(now)) if caller else None
        # One round trip of reads (storage.incoming): the call (a Twilio retry), the caller's
        # hourly-limit hit (the atomic counter, storage/counters.py) and the accounts the
        # flow will look up by caller ID.
        found = self.incoming_store.read(conn, sid, bucket, now, CALL_WINDOW, phone)
        if found.call is not None:  # Twilio retried "a call comes in": the reply stands
            if found.counted:  # counted before the call was known to exist: not a new call
                self.incoming_store.give_back(conn, bucket[0])
            return self._replay(conn, found.call, 0)
        # Over the limit, the ORM path answers the polite refusal.
        if not found.counted:
            return None
        try:
            return self._greet(conn, sid, caller, now, step_url, found.phone)
        except Exception:
            # The count committed on its own (autocommit): a call never created gives its
            # place back, once the failed write's transaction (and its lock) is let go.
            with suppress(Exception):
                self.store.rollback(conn)
                service.give_back_call_slot(conn, caller)
            raise

    def _greet(self, conn: Connection, sid: str, caller: str | None, now: datetime,
               step_url: Callable[[int], str], phone: PhoneRows | None) -> str:  # fmt: skip
        service = self.service
        event = CallStarted(caller, now)
        directory = service.directory(conn, phone)
        state, actions = advance(None, event, directory, service.policy(sid))
        if stores_reading(actions):
            raise BadRequest("a call that stores a reading before its first answer")
        rendered = service.renderer.render(actions, step_url(1))
        effects = collect_effects(None, CallRef(0, sid, None), "", now, actions)
        step = StepWrite(0, 0, state.to_json(), rendered.reply, now, effects.changes)
        self._add(step, {}, effects.events, effects.flags, rendered.spoken)
        self.store.write(conn, self.store.new_call(step, sid, caller or ""), step)
        log.info("call %s from %s", sid, mask(caller))
        return rendered.reply

    def _replay(self, conn: Connection, call: CallRow, seq: int) -> str:
        reply = self.store.reply(conn, call.id, seq)
        if reply is None:
            raise BadRequest(f"no stored reply for step {seq}")
        log.info("replayed step %s of call %s", seq, call.call_sid)
        return reply

    def _step(self, conn: Connection, sid: str, form: Mapping[str, str], seq: int,
              now: datetime, step_url: Callable[[int], str],
              prebuilt: bool = True) -> str:  # fmt: skip
        call = self.store.load(conn, sid)
        if call is None:
            raise BadRequest(f"unknown CallSid {sid}")
        if seq < call.seq:
            return self._replay(conn, call, seq)
        if seq > call.seq:
            raise BadRequest(f"step {seq} ahead of call at step {call.seq}")
        service = self.service
        directory = self._directory(conn)
        changes: dict[str, object] = {}
        state: CallState | None = None
        if call.state == AWAITING_STREAM:
            event: Event = CallStarted(caller=call.caller or None, now=now)
        else:
            state = CallState.from_json(call.state)
            event = self._event(form, call, seq, now, changes, conn)
        policy = service.policy(call.call_sid)
        new_state, actions = advance(state, event, directory, policy, owned=True)
        rendered = service.renderer.render(actions, step_url(seq + 1))
        period = service.period(new_state, now)
        step = StepWrite(call.id, seq, new_state.to_json(), rendered.reply, now, changes)
        ref = CallRef(call.id, call.call_sid, call.account_id)
        if not stores_reading(actions):
            effects = collect_effects(None, ref, period, now, actions)
            self._add(step, effects.changes, effects.events, effects.flags, rendered.spoken)
            if not self.store.write(conn, self.store.step_claim(step), step):
                raise StepConflict(sid)
            return rendered.reply
        # A reading: the ledger's statements need the database's answers, inside the step's
        # transaction, after the claim (which names no meter, so the ledger's lock comes first).
        step.changes.update(call_changes(actions))
        readings = [a for a in actions if isinstance(a, StoreReading)]
        if prebuilt and len(readings) == 1:
            return self._store_prebuilt(conn, sid, step, ref, period, now, actions, readings[0],
                                        rendered)  # fmt: skip
        if not self.store.claim(conn, self.store.step_claim(step), step):
            raise StepConflict(sid)
        try:
            effects = collect_effects(conn, ref, period, now, actions, rows_later=True)
            self._add(step, {}, effects.events, effects.flags, rendered.spoken)
            self.store.finish(conn, step)
        except BaseException:
            self.store.rollback(conn)
            raise
        return rendered.reply

    def _store_prebuilt(self, conn: Connection, sid: str, step: StepWrite, ref: CallRef,
                        period: str, now: datetime, actions: list[Action],
                        action: StoreReading, rendered: Rendered) -> str:  # fmt: skip
        """A step that stores one reading, by the ledger's rule in prebuilt SQL: on
        PostgreSQL three round trips in all (the load; BEGIN, the claim, the meter's lock and
        the period's rows; the ledger's writes, the step's rows and COMMIT). A used
        idempotency key fails the write: the step then runs again the Core way, which tells
        the caller's timeline that the reading was stored before."""
        new = new_reading(ref, period, now, action)
        claimed = self.store.claim_reading(conn, self.store.step_claim(step), step,
                                           new.meter_id, period)  # fmt: skip
        if claimed is None:
            raise StepConflict(sid)
        reading_id, rows = claimed
        plan = ledger.plan_store(new, rows)
        try:
            effects = collect_effects(None, ref, period, now, actions,
                                      stored=plan.stored(reading_id))  # fmt: skip
            self._add(step, {}, effects.events, effects.flags, rendered.spoken)
            before = self.store.reading_statements(new, reading_id, plan)
            self.store.finish(conn, step, before=before)
        except IntegrityError as exc:
            self.store.rollback(conn)
            if "idempotency_key" not in str(exc.orig):
                raise
            raise _UsedKey from exc
        except BaseException:
            self.store.rollback(conn)
            raise
        return rendered.reply

    def _close(self, conn: Connection, sid: str, status: str, now: datetime) -> None:
        if self.store.pg and self.store.close_finished(conn, sid, status, now):
            return
        call = self.store.load(conn, sid)
        if call is None:
            return
        step = StepWrite(call.id, call.seq, call.state, "", now)
        ended = [EventRow("status", status)]
        if call.outcome is None:  # the flow never finished: dropped (or ended during a transfer)
            outcome = self._dropped(conn, call, status, step)
            dropped = self.store.call_end(step, outcome)
            if self.store.write(conn, dropped, replace(step, events=step.events + ended),
                                reply=False):  # fmt: skip
                return
            step = StepWrite(call.id, call.seq, call.state, "", now)  # a retried callback won
        self.store.write(conn, self.store.call_end(step, None), replace(step, events=ended),
                         reply=False)  # fmt: skip

    def _dropped(self, conn: Connection, call: CallRow, status: str, step: StepWrite) -> str:
        """The flags (and notes) of a call that ended before the flow finished; its outcome
        (the flow's: `dropped`, or `transferred` when it ended during a transfer)."""
        if call.state == AWAITING_STREAM:
            step.flags.append(FlagRow("dropped_call", "до приветствия"))
            return "dropped"
        try:
            state = CallState.from_json(call.state)
        except ValueError as exc:
            detail = f"звонок завершился (статус {status}); состояние не читается: {exc}"
            step.flags.append(FlagRow("dropped_call", detail[:2000]))
            return "dropped"
        service, now = self.service, step.at
        ended = CallEnded(status=status, now=now)
        _, actions = advance(state, ended, self._directory(conn), service.policy(call.call_sid),
                             owned=True)  # fmt: skip
        ref = CallRef(call.id, call.call_sid, call.account_id)
        effects = collect_effects(None, ref, service.period(state, now), now, actions)
        step.events += effects.events
        step.flags += effects.flags
        return str(call_changes(actions).get("outcome") or "dropped")

    @staticmethod
    def _add(step: StepWrite, changes: dict[str, object], events: list[EventRow],
             flags: list[FlagRow], spoken: list[str]) -> None:  # fmt: skip
        step.changes.update(changes)
        step.events += events + prompt_rows(spoken)
        step.flags += flags

    def _event(self, form: Mapping[str, str], call: CallRow, seq: int, now: datetime,
               changes: dict[str, object], conn: Connection) -> Event:  # fmt: skip
        # `in` first: Werkzeug's MultiDict.get builds and catches a BadRequestKeyError (an
        # HTTP exception) for a missing name, and every step but a Dial result lacks this one.
        if "DialCallStatus" in form:  # the Dial-result route: how the transfer ended
            return TransferEnded(status=str(form["DialCallStatus"])[:20], now=now)
        digits = str(form.get("Digits", "") or "")
        # Twilio leaves the finishing '#' out of Digits; the flow tells `0#` (zero) from `0`.
        if form.get("FinishedOnKey") == "#" and DIGITS.fullmatch(digits + "#"):
            digits += "#"
        if digits and DIGITS.fullmatch(digits):
            _add_mode(call, "keypad", changes)
            return Keys(digits=digits, now=now)
        if digits:  # keys we cannot use: the flow treats them as unusable input
            return Keys(digits="?", now=now)
        speech = self.service.speech
        if speech is not None:
            with GATE.stepped_out():  # a wait for the utterance is no turn's work
                spoken = speech(Session(bind=conn), call.call_sid, seq, now)
            if spoken is not None:
                _add_mode(call, "speech", changes)
                return spoken
        return Silence(now=now)


def _add_mode(call: CallRow, mode: str, changes: dict[str, object]) -> None:
    modes = set(filter(None, (call.input_modes or "").split(",")))
    if mode not in modes:
        changes["input_modes"] = ",".join(sorted(modes | {mode}))
