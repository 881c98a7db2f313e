"""Spoken answers heard at once: move the live call on as soon as its answer is recognized.

A `<Gather>` only ends when its keypad timeout runs out, seconds after the caller stopped
speaking. When the media stream stores the recognizer's final result for the call's current
step, `SpokenAnswers.heard` asks Twilio's REST API to redirect the live call to that step's URL;
the step webhook then finds the utterance and the flow answers it. Keys pressed first still
win: their webhook moves the call past the step, and a redirect for an old step is not sent.

Credentials come from the environment: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (the token that
also validates webhooks); METERLINE_TWILIO_API_URL replaces https://api.twilio.com (tests point
it at a local stand-in; a deployment may point it at a regional edge). Without an account SID
no redirect is made and a spoken answer waits for the Gather's timeout, as before.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from callflows.state import CallState
from ivr.config import Settings
from storage.models import Call

log = logging.getLogger(__name__)
# Steps where the line listens for a spoken answer; elsewhere a cough must not cut a prompt.
SPOKEN_STEPS = ("value", "confirm")
REST_TIMEOUT = 3.0  # seconds; past this the Gather's own timeout is as quick


class CallRedirector(Protocol):
    """Moves a live call to a new TwiML URL."""

    def redirect(self, call_sid: str, url: str) -> None:
        """Ask the telephony provider to fetch `url` for the call now."""
        ...


class _BaseUrlHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending every request to another base URL."""

    def __init__(self, base_url: str) -> None:
        super().__init__(timeout=REST_TIMEOUT)
        self.base = urlsplit(base_url)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        path = self.base.path.rstrip("/") + parts.path
        moved = urlunsplit((self.base.scheme, self.base.netloc, path, parts.query, ""))
        return super().request(method, moved, *args, **kwargs)


class TwilioRedirector:
    """Redirects calls with the real twilio SDK (`calls(sid).update(url=…)`)."""

    def __init__(self, account_sid: str, auth_token: str, api_url: str | None = None) -> None:
        http = _BaseUrlHttpClient(api_url) if api_url else TwilioHttpClient(timeout=REST_TIMEOUT)
        self.client = Client(account_sid, auth_token, http_client=http)

    def redirect(self, call_sid: str, url: str) -> None:
        """Update the live call with the step URL (POST, as every step is requested)."""
        self.client.calls(call_sid).update(url=url, method="POST")


def redirector_from(settings: Settings) -> CallRedirector | None:
    """The configured redirector, or None without Twilio REST credentials."""
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return None
    return TwilioRedirector(
        settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_url
    )


class SpokenAnswers:
    """The one hook the media stream calls when a final result is stored for a step."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], redirector: CallRedirector
    ) -> None:
        self.public_url = settings.public_url
        self.sessions = sessions
        self.redirector = redirector

    def heard(self, call_sid: str, seq: int) -> bool:
        """Move the call to step `seq` if it is still there and listening; whether it moved."""
        if not self._listening(call_sid, seq):
            return False
        url = f"{self.public_url}/voice/step?seq={seq}"
        try:
            self.redirector.redirect(call_sid, url)
        except (TwilioException, OSError) as exc:
            # The Gather's timeout still brings the answer in, only later.
            log.warning("call %s: could not redirect to step %s: %s", call_sid, seq, exc)
            return False
        log.info("call %s: spoken answer, redirected to step %s", call_sid, seq)
        return True

    def _listening(self, call_sid: str, seq: int) -> bool:
        with self.sessions() as session:
            call = session.scalars(select(Call).where(Call.call_sid == call_sid)).one_or_none()
            if call is None or call.seq != seq or call.outcome is not None:
                return False  # keys (or the Gather's timeout) moved the call on first
            try:
                step = CallState.from_json(call.state).step
            except ValueError:
                return False  # awaiting the stream, or a state the step webhook will report
            return step in SPOKEN_STEPS
