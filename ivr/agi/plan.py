"""Render the flow's neutral actions as an AGI plan: what the channel plays, collects and dials.

A plan is JSON (it is stored as the step's reply, like TwiML, so a replayed step gets the same
one). It is a list of steps:

    {"play": [files]}                          prompts played to the end (before a hang-up)
    {"gather": [files], "timeout": s, "first": s, "finish": "#", "max": n}
                                               prompts any key interrupts, then keys collected
    {"dial": target, "unavailable": [files]}   Dial; if nobody answers, say so
    {"dial": target, "report": true}           Dial, and report how it ended (next step)
    {"hangup": true}

Files are named as Asterisk sees them: `METERLINE_ASTERISK_SOUNDS/ml-…`, no extension.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from callflows.model import Action, Gather, Hangup, Say, Transfer
from ivr.agi.sounds import say_pieces
from ivr.prompts import Catalogue
from ivr.voice.backend import Rendered

# Seconds Asterisk rings the operators before giving up (Twilio's <Dial timeout> is the same).
DIAL_TIMEOUT = 30


@dataclass
class Plan:
    """A step's plan, as the channel carries it out."""

    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        """The plan as stored in the step's reply."""
        return json.dumps({"agi": self.steps}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> Plan:
        """A stored plan; ValueError if the reply is not one (a Twilio call's TwiML, say)."""
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("agi"), list):
            raise ValueError("not an AGI plan")
        return cls(steps=data["agi"])


class AgiRenderer:
    """The Asterisk back end's renderer (see `ivr.voice.backend.Renderer`)."""

    def __init__(self, catalogue: Catalogue, sounds: str):
        self.catalogue = catalogue
        self.sounds = sounds.rstrip("/")

    def files(self, say: Say) -> list[str]:
        """The sound files of one prompt, as Asterisk names them."""
        return [f"{self.sounds}/{piece.name}" for piece in say_pieces(self.catalogue, say)]

    def render(self, actions: list[Action], next_step: str = "") -> Rendered:
        """The plan for `actions`; `next_step` is unused (the channel knows its own step)."""
        plan, spoken = Plan(), []
        played: list[str] = []  # prompts said before a Gather become part of it: keys cut in
        for action in actions:
            if isinstance(action, Say):
                played += self.files(action)
                spoken.append(self.catalogue.render(action.prompt, action.params).text)
            elif isinstance(action, Gather):
                files = list(played)
                played = []
                for say in action.prompts:
                    files += self.files(say)
                    spoken.append(self.catalogue.render(say.prompt, say.params).text)
                plan.steps.append(
                    {
                        "gather": files,
                        "timeout": action.timeout,
                        # After the prompts, the first key may take longer (a lone key acts
                        # at once, yet a caller has time to start).
                        "first": max(action.timeout, action.first_key_wait or 0),
                        "finish": action.finish_on_key,
                        "max": action.num_digits,
                    }
                )
            elif isinstance(action, Transfer | Hangup):
                if played:
                    plan.steps.append({"play": played})
                    played = []
                if isinstance(action, Transfer) and action.result:
                    # The flow says what happens next (carry on, or goodbye): report to it.
                    plan.steps.append({"dial": action.number, "report": True})
                elif isinstance(action, Transfer):
                    unavailable = self.files(Say("operator_unavailable")) + self.files(
                        Say("goodbye")
                    )
                    plan.steps.append({"dial": action.number, "unavailable": unavailable})
                else:
                    plan.steps.append({"hangup": True})
        if played:
            plan.steps.append({"play": played})
        return Rendered(reply=plan.to_json(), spoken=spoken)

    def apology(self, prompt: str = "system_error") -> str:
        """A parting prompt and a hang-up; if even the catalogue fails, just the hang-up."""
        try:
            return self.render([Say(prompt), Hangup()]).reply
        except (KeyError, ValueError, IndexError):
            return Plan([{"hangup": True}]).to_json()
