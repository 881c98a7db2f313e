"""One webhook, one event: load the call, advance the flow, apply its actions, reply.

Each reply is stored under the call's step number (`seq`). A Twilio retry of step N
after we moved on gets the stored reply for N; a race between two workers on the same
step is settled by a conditional UPDATE on `seq` (the loser returns the winner's reply);
readings carry a unique idempotency key. So a replay never stores anything twice.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from callflows.flow import advance
from callflows.model import (
    Action,
    CallStarted,
    Event,
    Hangup,
    Policy,
    Say,
)
from callflows.state import CallState
from ivr.config import Settings
from ivr.phones import mask, normalize
from ivr.prompts import Catalogue
from ivr.voice.backend import Renderer
from ivr.voice.directory import PrefetchedDirectory, SqlDirectory
from ivr.voice.effects import StepInfo, apply_effects, prompt_rows, saved_report
from ivr.voice.hot_path import AWAITING_STREAM, CALL_WINDOW, BadRequest, HotPath, StepConflict
from ivr.voice.twiml import StreamTarget, TwimlRenderer, connect_stream
from storage import counters
from storage.incoming import PhoneRows
from storage.ledger import Db, period_of
from storage.models import Call, CallEvent, CallReply, Flag

log = logging.getLogger(__name__)

# Twilio's CallSid, or an Asterisk channel's uniqueid ("1733050000.42", "host-1733050000.42").
CALL_SID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
FINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}


class VoiceService:
    """The call flow behind the webhooks; one per process."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        catalogue: Catalogue,
        *,
        clock: Callable[[], datetime],
        engine: Engine,
        speech: Callable[[Session, str, int, datetime], Event | None] | None = None,
        stream: Callable[[str], StreamTarget | None] | None = None,
        stream_connected: Callable[[str], bool] | None = None,
        renderer: Renderer | None = None,
    ):
        self.settings = settings
        # The settings are frozen: the flow's two policies (without speech, with it) are too.
        self._policies = (settings.policy(speech=False), settings.policy(speech=True))
        self.sessions = sessions
        self.catalogue = catalogue
        self.clock = clock
        self.speech = speech  # turns a step's recognized utterance into an event
        self.stream = stream  # where (and with which token) to stream a call's audio
        self.stream_connected = stream_connected  # whether a call's audio reached us
        # The back end's reply format: TwiML unless told otherwise (Asterisk passes its own).
        self.renderer: Renderer = renderer or TwimlRenderer(catalogue)
        # Webhooks run on the hot path, on the autocommit engine `Services.webhook_engine`
        # (storage.steps), disposed with the app's engine.
        self.hot = HotPath(self, engine)

    def policy(self, call_sid: str) -> Policy:
        """The flow's policy for a call: speech only if its audio stream really connected."""
        speech = bool(self.stream_connected and self.stream_connected(call_sid))
        return self._policies[speech]

    def directory(self, db: Db, prefetched: PhoneRows | None = None) -> SqlDirectory:
        """The flow's account look-ups on `db` (a Session or the hot path's Connection);
        with `prefetched`, the caller's accounts are answered from rows already read."""
        settings = self.settings
        if prefetched is not None:
            return PrefetchedDirectory(db, settings.timezone, settings.window,
                                       settings.account_guesses_per_hour, prefetched)  # fmt: skip
        return SqlDirectory(
            db, settings.timezone, settings.window, settings.account_guesses_per_hour
        )

    def directory_period(self, moment: datetime) -> str:
        """The period readings handed in at `moment` count for (the ledger's rule)."""
        return period_of(moment, self.settings.timezone, self.settings.window)

    def period(self, state: CallState, now: datetime) -> str:
        """The period a step's readings count for: the one the call was let in for (on its
        state), else that of `now`."""
        return state.period or self.directory_period(now)

    # --- webhooks ---

    def incoming(self, form: Mapping[str, str], step_url: Callable[[int], str]) -> str:
        """A call comes in: create the call, greet, identify."""
        sid = _call_sid(form)
        now = self.clock()
        caller = normalize(form.get("From"), self.settings.city_code)
        if self.stream is None:  # calls with an audio stream take the ORM path below
            try:
                reply = self.hot.incoming(sid, caller, now, step_url)
            except IntegrityError:
                # The same "a call comes in" twice at once (Twilio retried while we were
                # still answering): the other request created the call. Answer as it did.
                return self._winner_reply(sid, 0)
            if reply is not None:
                return reply
        looked = False  # whether the database answered at all before failing
        try:
            with self.sessions() as session:
                call = session.scalars(select(Call).where(Call.call_sid == sid)).one_or_none()
                looked = True
                if call is not None:  # Twilio retried "a call comes in"
                    return self._replay(session, call, 0)
                if not self.take_call_slot(session, caller, now):
                    return self._refuse_rate_limited(session, sid, caller or "", now)
                call = Call(call_sid=sid, caller=caller or "", started_at=now, input_modes="")
                session.add(call)
                session.flush()
                log.info("call %s from %s", sid, mask(caller))
                if self.stream is not None:
                    twiml = self._connect_stream(session, call, step_url)
                else:
                    twiml = self._run(session, call, None, CallStarted(caller, now), step_url)
                session.commit()
                return twiml
        except (IntegrityError, OperationalError):
            # The same "a call comes in" twice at once (Twilio retried while we were still
            # answering): the other request created the call. Answer exactly as it did.
            if not looked or not self._call_exists(sid):
                raise  # a database failure, not a race
            return self._winner_reply(sid, 0)

    def step(self, form: Mapping[str, str], seq: int, step_url: Callable[[int], str]) -> str:
        """The caller answered a prompt (keys, speech or silence)."""
        sid = _call_sid(form)
        try:
            return self.hot.step(sid, form, seq, self.clock(), step_url)
        except StepConflict:
            return self._winner_reply(sid, seq)

    def status(self, form: Mapping[str, str]) -> None:
        """Twilio's status callback: close the call; flag it if the flow never finished.

        The call is closed (`ended_at`) even when its state cannot be read or the flow's
        effects fail: a call left open would count as in progress for ever."""
        sid = _call_sid(form)
        status = str(form.get("CallStatus", ""))
        if status not in FINAL_STATUSES:
            return
        now = self.clock()
        try:
            self.hot.close(sid, status, now)
        except Exception:
            log.exception("status callback of %s failed; closing the call only", sid)
            with self.sessions() as session:
                session.execute(
                    update(Call)
                    .where(Call.call_sid == sid, Call.ended_at.is_(None))
                    .values(ended_at=now, outcome=func.coalesce(Call.outcome, "dropped"))
                )
                session.commit()

    def fail(self, sid: str | None, detail: str) -> str:
        """Something broke: flag it if the database lets us, and apologise to the caller,
        saying truthfully what this call saved and what it did not."""
        says: list[Say] = []
        try:
            with self.sessions() as session:
                call = None
                if sid:
                    call = session.scalars(select(Call).where(Call.call_sid == sid)).one_or_none()
                call_id = call.id if call is not None else None
                session.add(Flag(reason="system_error", detail=detail[:2000], call_id=call_id))
                session.commit()
                if call is not None:
                    says = saved_report(session, call)
        except Exception:  # the database itself may be what failed: then we claim nothing
            log.exception("could not record a system_error flag")
        try:
            actions: list[Action] = [Say("system_error"), *says, Say("call_later"), Hangup()]
            return self.renderer.render(actions, "").reply
        except Exception:
            log.exception("could not render the apology")
            return self.renderer.apology()

    # --- internals ---

    def _deps(self, session: Session, call: Call) -> tuple[SqlDirectory, Policy]:
        return self.directory(session), self.policy(call.call_sid)

    def _connect_stream(self, session: Session, call: Call, step_url: Callable[[int], str]) -> str:
        """Start the call's audio stream and come back in a second, when we know it works."""
        assert self.stream is not None
        twiml = connect_stream(self.stream(call.call_sid), step_url(1))
        call.state, call.seq = AWAITING_STREAM, 1
        session.add(CallReply(call_id=call.id, seq=0, twiml=twiml))
        session.commit()
        return twiml

    def _info(self, call: Call, seq: int, state: CallState, now: datetime) -> StepInfo:
        """The step's effects count for the period the call was let in for (on its state)."""
        return StepInfo(call=call, seq=seq, period=self.period(state, now), now=now)

    def _run(
        self,
        session: Session,
        call: Call,
        state: CallState | None,
        event: Event,
        step_url: Callable[[int], str],
    ) -> str:
        seq = call.seq
        new_state, actions = advance(state, event, *self._deps(session, call), owned=True)
        rendered = self.renderer.render(actions, step_url(seq + 1))
        claimed = session.execute(
            update(Call)
            .where(Call.id == call.id, Call.seq == seq)
            .values(seq=seq + 1, state=new_state.to_json())
        ).rowcount  # type: ignore[attr-defined]
        if claimed != 1:
            session.rollback()
            raise StepConflict(call.call_sid)
        now = getattr(event, "now", self.clock())
        apply_effects(session, self._info(call, seq, new_state, now), actions)
        for row in prompt_rows(rendered.spoken):
            session.add(CallEvent(call_id=call.id, seq=seq, kind=row.kind, text=row.text))
        session.add(CallReply(call_id=call.id, seq=seq, twiml=rendered.reply))
        return rendered.reply

    def _replay(self, session: Session, call: Call, seq: int) -> str:
        reply = session.scalar(
            select(CallReply.twiml).where(CallReply.call_id == call.id, CallReply.seq == seq)
        )
        if reply is None:
            raise BadRequest(f"no stored reply for step {seq}")
        log.info("replayed step %s of call %s", seq, call.call_sid)
        return reply

    def _call_exists(self, sid: str) -> bool:
        with self.sessions() as session:
            return session.scalar(select(Call.id).where(Call.call_sid == sid)) is not None

    def _winner_reply(self, sid: str, seq: int) -> str:
        for _ in range(40):
            with self.sessions() as session:
                call = session.scalars(select(Call).where(Call.call_sid == sid)).one_or_none()
                if call is not None and call.seq > seq:
                    reply = session.scalar(
                        select(CallReply.twiml).where(
                            CallReply.call_id == call.id, CallReply.seq == seq
                        )
                    )
                    if reply is not None:
                        return reply
            time.sleep(0.05)
        raise BadRequest(f"lost the race for step {seq} and found no reply")

    def take_call_slot(self, session: Db, caller: str | None, now: datetime) -> bool:
        """Count the call against its caller's hourly limit; False if the hour is full.

        Withheld, empty and unparseable numbers share one bucket: otherwise hiding the number
        would be a way round the limit (and round the account-number limit behind it).
        """
        key, limit = self.call_bucket(caller)
        return counters.take(session, key, now, CALL_WINDOW, limit)

    def give_back_call_slot(self, session: Db, caller: str | None) -> None:
        """Uncount a call that was never created (its step failed)."""
        counters.give_back(session, self.call_bucket(caller)[0])

    def call_bucket(self, caller: str | None) -> tuple[str, int]:
        """The counter key and hourly limit a call from `caller` is counted on."""
        if caller:
            return f"calls:{caller}", self.settings.calls_per_hour
        return "calls:unknown", self.settings.unknown_calls_per_hour

    def _refuse_rate_limited(self, session: Session, sid: str, caller: str, now: datetime) -> str:
        call = Call(call_sid=sid, caller=caller, started_at=now, outcome="rate_limited", seq=1)
        session.add(call)
        session.flush()
        session.add(Flag(reason="rate_limited", call_id=call.id, detail="calls per hour exceeded"))
        twiml = self.renderer.apology(prompt="rate_limited")
        session.add(CallReply(call_id=call.id, seq=0, twiml=twiml))
        session.commit()
        log.warning("rate limit: call %s from %s refused", sid, mask(caller))
        return twiml


def _call_sid(form: Mapping[str, str]) -> str:
    sid = str(form.get("CallSid", "") or "")
    if not CALL_SID.fullmatch(sid):
        raise BadRequest("missing or malformed CallSid")
    return sid
