"""What a telephony back end gives the step driver: a renderer of the flow's neutral actions.

The step driver (`ivr.voice.calls.VoiceService`) is the same for every back end: it loads the
call, advances the flow, applies the effects and stores the step's reply. Only the reply's
form differs: TwiML for Twilio (`ivr.voice.twiml`), an AGI plan for Asterisk (`ivr.agi.plan`).
The stored reply is what a replayed step gets back, so it must be a string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from callflows.model import Action


@dataclass
class Rendered:
    """A back end's reply to one step, plus the words it speaks, for the call's timeline."""

    reply: str
    spoken: list[str] = field(default_factory=list)

    @property
    def twiml(self) -> str:
        """The reply under its Twilio name."""
        return self.reply


class Renderer(Protocol):
    """Turns the flow's actions into one back end's reply."""

    def render(self, actions: list[Action], next_step: str) -> Rendered:
        """The reply for `actions`; the caller's answer goes to `next_step` (a URL, or unused)."""
        ...

    def apology(self, prompt: str = "system_error") -> str:
        """A parting prompt (an apology by default) and a hang-up; never fails."""
        ...
