"""Sign webhook requests with the real twilio SDK, as Twilio does."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

PUBLIC_URL = "https://ivr.example.org"


def signed_headers(token: str, url: str, fields: dict[str, str]) -> dict[str, str]:
    """The X-Twilio-Signature header Twilio would send for this URL and form."""
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, fields)}


@dataclass
class TwilioClient:
    """Posts signed webhooks to the Flask test client, one call at a time."""

    client: FlaskClient
    token: str
    caller: str = "+79211234567"
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    last: ET.Element | None = None

    def post(self, url: str, **extra: str) -> Any:
        """POST a signed webhook to an absolute public URL (or a path under it)."""
        if url.startswith("/"):
            url = PUBLIC_URL + url
        fields = {
            "CallSid": self.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller,
            "To": "+78172597904",
            "CallStatus": "in-progress",
            "Direction": "inbound",
        }
        fields.update(extra)
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.client.post(path, data=fields, headers=signed_headers(self.token, url, fields))

    def twiml(self, url: str, **extra: str) -> ET.Element:
        """POST and parse the TwiML answer (asserting a 200)."""
        response = self.post(url, **extra)
        assert response.status_code == 200, response.data
        self.last = ET.fromstring(response.data)
        return self.last

    def start(self) -> ET.Element:
        """Twilio's "a call comes in"."""
        return self.twiml("/voice/incoming", CallStatus="ringing")

    def answer(self, digits: str | None) -> ET.Element:
        """Answer the last Gather with keys (None for silence)."""
        assert self.last is not None
        gather = self.last.find("Gather")
        assert gather is not None, ET.tostring(self.last, encoding="unicode")
        extra = {} if digits is None else {"Digits": digits}
        return self.twiml(gather.get("action", ""), **extra)


def spoken_text(root: ET.Element) -> str:
    """Everything a TwiML document says, inside Gathers too."""
    return " ".join((node.text or "") for node in root.iter("Say"))
