"""Carry out an AGI plan on one Asterisk channel: play, collect keys, dial, hang up.

Gather works as Twilio's does: any key cuts a prompt short (STREAM FILE with every key as an
escape digit), `*` is kept among the digits (the flow reads it as the decimal point), the
finish key (`#`) ends input and is not returned, the same timeout applies after the prompts
and between keys, and nothing keyed is silence. A hang-up or a closed connection raises
`ChannelGone`, whatever command was running.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.agi.plan import DIAL_TIMEOUT, Plan

log = logging.getLogger(__name__)

KEYS = "0123456789*#"
# AGI codes that mean the channel is gone (511: "Command Not Permitted on a dead channel").
DEAD = {511}


class ChannelGone(Exception):
    """The caller hung up, or Asterisk closed the FastAGI connection."""


class AgiFailure(Exception):
    """Asterisk refused a command (a bug on our side, or a missing module)."""


class AgiPeer(Protocol):
    """What a channel needs of a FastAGI connection (panoramisk's Request has this)."""

    async def send_command(self, command: str) -> dict[str, Any]:
        """Send one command line; its parsed result."""
        ...


# Asterisk's DIALSTATUS as Twilio's DialCallStatus, which the step driver understands.
DIAL_STATUSES = {
    "ANSWER": "completed",
    "BUSY": "busy",
    "NOANSWER": "no-answer",
    "CANCEL": "canceled",
}


def transfer_status(dial_status: str) -> str:
    """How a transfer ended, in Twilio's words (CONGESTION, CHANUNAVAIL, … are 'failed')."""
    return DIAL_STATUSES.get(dial_status, "failed")


@dataclass(frozen=True)
class Outcome:
    """How a plan ended: the caller's keys (None: the plan asked nothing), a Dial's status,
    and, for a transfer the flow wants to hear about, how it ended (Twilio's words)."""

    digits: str | None = None
    dial_status: str | None = None
    transfer_ended: str | None = None


class Channel:
    """One call's channel, driven one command at a time."""

    def __init__(self, peer: AgiPeer):
        self.peer = peer

    async def command(self, line: str) -> tuple[str, str]:
        """Run a command; its result value and the text in brackets after it."""
        result = await self.peer.send_command(line)
        error = result.get("error")
        if error == "AGIResultHangup" or result.get("status_code") in DEAD:
            raise ChannelGone(line)
        if error == "AGIAppError":  # result=-1: the application failed, or the caller left
            return "-1", ""
        if error:
            raise AgiFailure(f"{line.split()[0]}: {error} {result.get('msg', '')}".strip())
        value, data = result.get("result", ("", ""))
        return str(value), str(data or "")

    async def run(self, plan: Plan) -> Outcome:
        """Carry out every step of the plan; stop at its Gather (whose keys are returned)."""
        dial_status = None
        for step in plan.steps:
            if "play" in step:
                await self._play(step["play"], interruptible=False)
            elif "gather" in step:
                return Outcome(digits=await self._gather(step), dial_status=dial_status)
            elif "dial" in step:
                dial_status = await self._dial(step["dial"])
                if step.get("report"):
                    return Outcome(
                        dial_status=dial_status, transfer_ended=transfer_status(dial_status)
                    )
                if dial_status != "ANSWER":
                    await self._play(step.get("unavailable", []), interruptible=False)
            elif "hangup" in step:
                await self.command("HANGUP")
                break
        return Outcome(digits=None, dial_status=dial_status)

    async def _play(self, files: list[str], interruptible: bool) -> str:
        """Play the files in order; the key that cut them short, or ''."""
        escape = KEYS if interruptible else ""
        for name in files:
            value, _ = await self.command(f'STREAM FILE {name} "{escape}"')
            if value == "-1":
                await self._alive()  # a missing file gives -1 too: carry on if the caller is here
                log.warning("could not play %s", name)
            elif value != "0":
                return chr(int(value))
        return ""

    async def _gather(self, step: dict[str, Any]) -> str:
        timeout_ms = int(step.get("timeout", 5)) * 1000
        first_ms = int(step.get("first") or step.get("timeout", 5)) * 1000
        finish, most = str(step.get("finish") or ""), step.get("max")
        keys = await self._play(step["gather"], interruptible=True)
        while True:
            if finish and keys.endswith(finish):
                return keys[: -len(finish)]
            if most and len(keys) >= int(most):
                return keys
            wait = timeout_ms if keys else first_ms
            value, _ = await self.command(f"WAIT FOR DIGIT {wait}")
            if value == "-1":
                raise ChannelGone("WAIT FOR DIGIT")
            if value == "0":  # timed out: what was keyed so far (maybe nothing: silence)
                return keys
            keys += chr(int(value))

    async def _dial(self, target: str) -> str:
        value, _ = await self.command(f'EXEC Dial "{target},{DIAL_TIMEOUT}"')
        if value == "-1":  # Dial returns -1 when the caller hangs up (or after a bridged call)
            await self._alive()
        _, status = await self.command("GET VARIABLE DIALSTATUS")
        return status or "UNKNOWN"

    async def _alive(self) -> None:
        """Raise ChannelGone unless the channel is still up."""
        value, _ = await self.command("CHANNEL STATUS")
        if value in ("-1", ""):
            raise ChannelGone("CHANNEL STATUS")
