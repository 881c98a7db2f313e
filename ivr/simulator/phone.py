"""A phone that calls our server exactly as Twilio would: same fields, signed, verb by verb.

Used by `meterline call`, the end-to-end tests and the load benchmark. It follows
`Say`, `Play`, `Gather`, `Redirect`, `Dial`, `Hangup` and sends the status callback.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from twilio.request_validator import RequestValidator

SILENCE = {"_", "-", "silence"}
HANGUP = {"hangup", "!"}


class CallError(Exception):
    """The server answered something Twilio could not play (non-200, not TwiML)."""


@dataclass
class Transcript:
    """What happened on the call: what the caller heard and how long each webhook took."""

    call_sid: str
    heard: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    status: str = "completed"
    dialed: str | None = None

    def said(self, fragment: str) -> bool:
        """Whether any prompt contained `fragment`."""
        return any(fragment in text for text in self.heard)


# An answer source: given what was just heard, return the keys to press ("" = silence),
# None to hang up, or ("wav", path) to speak a WAV file at that prompt.
Answer = str | tuple[str, str] | None


@dataclass
class SimulatedCall:
    """One call from `caller` to our server at `base_url`, signed for `public_url`."""

    base_url: str
    token: str
    caller: str
    public_url: str | None = None
    to: str = "+78172597904"
    session: requests.Session = field(default_factory=requests.Session)
    on_heard: Callable[[str], None] = lambda _text: None
    # Opens the call's media stream: (ws url, call_sid, token) -> an object with say/close.
    open_stream: Callable[[str, str, str], Any] | None = None
    pause: float = 0.0  # seconds "listening" to each prompt, for realistic load
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    max_steps: int = 200
    # How a transfer ends: a simulated line has no operator, so by default nobody answers.
    dial_status: str = "no-answer"

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.public_url = (self.public_url or self.base_url).rstrip("/")
        self.validator = RequestValidator(self.token)
        self.transcript = Transcript(call_sid=self.call_sid)
        self.stream: Any = None

    def run(self, answers: Iterator[Answer]) -> Transcript:
        """Place the call and answer every Gather from `answers`; returns the transcript."""
        params = {"CallStatus": "ringing"}
        url: str | None = f"{self.public_url}/voice/incoming"
        steps = 0
        try:
            while url is not None and steps < self.max_steps:
                steps += 1
                root = self._post(url, params)
                url, params = self._play(root, answers)
        finally:
            if self.stream is not None:
                self.stream.close()
        self.status(self.transcript.status)
        return self.transcript

    def status(self, status: str) -> None:
        """Send Twilio's status callback for the end of the call."""
        self._post(
            f"{self.public_url}/voice/status",
            {"CallStatus": status, "CallDuration": "60"},
            expect_twiml=False,
        )

    # --- internals ---

    def _fields(self, extra: dict[str, str]) -> dict[str, str]:
        base = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.caller,
            "To": self.to,
            "Caller": self.caller,
            "Called": self.to,
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            "CallStatus": "in-progress",
        }
        base.update(extra)
        return base

    def _post(self, public: str, extra: dict[str, str], expect_twiml: bool = True) -> ET.Element:
        assert self.public_url is not None
        fields = self._fields(extra)
        signature = self.validator.compute_signature(public, fields)
        parts = urlsplit(public)
        target = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        started = time.perf_counter()
        response = self.session.post(
            target, data=fields, headers={"X-Twilio-Signature": signature}, timeout=15
        )
        self.transcript.latencies.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise CallError(f"{target} answered HTTP {response.status_code}")
        if not expect_twiml:
            return ET.Element("Response")
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise CallError(f"{target} answered something that is not TwiML: {exc}") from None
        if root.tag != "Response":
            raise CallError(f"{target} answered <{root.tag}>, not <Response>")
        return root

    def _hear(self, node: ET.Element) -> None:
        if node.tag == "Say":
            text = " ".join("".join(node.itertext()).split())  # SSML tags carry words too
        elif node.tag == "Play":
            text = f"[звук {node.text}]"
        else:
            return
        self.transcript.heard.append(text)
        self.on_heard(text)

    def _play(
        self, root: ET.Element, answers: Iterator[Answer]
    ) -> tuple[str | None, dict[str, str]]:
        """Play a TwiML document; the next URL to request and its fields, or None at the end."""
        for verb in root:
            if verb.tag in ("Say", "Play"):
                self._hear(verb)
            elif verb.tag == "Gather":
                return self._gather(verb, answers)
            elif verb.tag == "Start":
                self._start_stream(verb)
            elif verb.tag == "Pause":
                # Twilio waits the whole pause; a second at most is enough for a simulation.
                time.sleep(min(float(verb.get("length", "1")), 1.0))
            elif verb.tag == "Redirect":
                return (verb.text or "").strip(), {}
            elif verb.tag == "Dial":
                self.transcript.dialed = (verb.text or "").strip()
                if verb.get("action"):  # the line wants to know how the transfer ended
                    return verb.get("action"), {"DialCallStatus": self.dial_status}
                return None, {}
            elif verb.tag == "Hangup":
                return None, {}
        return None, {}

    def _start_stream(self, verb: ET.Element) -> None:
        node = verb.find("Stream")
        if node is None or self.open_stream is None or self.stream is not None:
            return
        token = next((p.get("value", "") for p in node.iter("Parameter")
                      if p.get("name") == "token"), "")  # fmt: skip
        public = node.get("url", "")
        assert self.public_url is not None
        http_public = public.replace("wss://", "https://").replace("ws://", "http://")
        local = self.base_url + http_public.removeprefix(self.public_url)
        ws_url = local.replace("https://", "wss://").replace("http://", "ws://")
        self.stream = self.open_stream(ws_url, self.call_sid, token)

    def _gather(
        self, verb: ET.Element, answers: Iterator[Answer]
    ) -> tuple[str | None, dict[str, str]]:
        for child in verb:
            self._hear(child)
        if self.pause:
            time.sleep(self.pause)
        answer = next(answers, None)
        action = verb.get("action") or ""
        if answer is None:
            self.transcript.status = "completed"
            return None, {}
        if isinstance(answer, tuple):
            if self.stream is None:
                raise CallError("the line started no audio stream: speech is not configured")
            self.stream.say(answer[1])
            time.sleep(0.3)  # Twilio's Gather waits seconds of silence; the recognizer needs less
            return action, {}
        finish = verb.get("finishOnKey", "#")
        digits, finished = answer, ""
        if finish and answer.endswith(finish):
            digits, finished = answer[: -len(finish)], finish
        fields = {"Digits": digits} if digits or finished else {}
        if finished:
            fields["FinishedOnKey"] = finished
        return action, fields


def scripted(keys: str) -> Iterator[Answer]:
    """Answers from a script: space-separated key presses, `_` for silence, `hangup` to hang up,
    `wav:PATH` to say a recorded value.

    >>> list(scripted("1 123*5# _ wav:a.wav hangup"))
    ['1', '123*5#', '', ('wav', 'a.wav'), None]
    """
    for token in keys.split():
        if token in SILENCE:
            yield ""
        elif token in HANGUP:
            yield None
            return
        elif token.startswith("wav:"):
            yield ("wav", token[4:])
        else:
            yield token
