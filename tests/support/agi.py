"""A fake Asterisk for FastAGI tests: it opens a connection, sends the channel's variables and
answers each command as a caller would, pressing the keys it is given gather by gather."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

ESCAPES = '"0123456789*#"'
HANG_UP = "~"  # in `answers`: the caller hangs up at this gather


@dataclass
class FakeCaller:
    """A channel's side of one FastAGI connection.

    `answers` are the keys pressed at each Gather in turn ("" is silence, HANG_UP leaves);
    the first key of each answer cuts the prompt short, as a caller who knows the line would
    (unless `barge_in` is off).
    """

    uniqueid: str
    callerid: str
    answers: list[str]
    dial_status: str = "ANSWER"
    barge_in: bool = True  # False: hears every prompt out, then keys
    commands: list[str] = field(default_factory=list)
    closed_by_server: bool = False
    _keys: list[str] | None = None
    _started: bool = False

    def variables(self) -> bytes:
        lines = [
            "agi_network: yes",
            "agi_network_script: meterline",
            "agi_request: agi://127.0.0.1/meterline",
            "agi_channel: PJSIP/carrier-00000001",
            "agi_language: ru",
            f"agi_uniqueid: {self.uniqueid}",
            f"agi_callerid: {self.callerid}",
            "agi_calleridname: unknown",
            "agi_dnid: 597904",
        ]
        return ("\n".join(lines) + "\n\n").encode()

    def answer(self, command: str) -> str | None:
        """The line Asterisk would send back; None: the caller hung up (close the socket)."""
        if command.startswith("STREAM FILE") and command.endswith(ESCAPES):
            if self._keys is None or (self._started and not self._keys):
                if not self.answers:
                    return None
                self._keys, self._started = list(self.answers.pop(0)), False
            if self._keys == [HANG_UP]:
                return None
            if self._keys and self.barge_in:
                self._started = True
                return f"200 result={ord(self._keys.pop(0))} endpos=1200"
            return "200 result=0 endpos=8000"
        if command.startswith("WAIT FOR DIGIT"):
            self._started = True
            if self._keys:
                return f"200 result={ord(self._keys.pop(0))}"
            return "200 result=0"
        if command == "GET VARIABLE DIALSTATUS":
            return f"200 result=1 ({self.dial_status})"
        if command == "CHANNEL STATUS":
            return "200 result=6"
        return "200 result=0"

    async def call(self, host: str, port: int) -> None:
        """Place the call; return when either side hangs up."""
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(self.variables())
        await writer.drain()
        try:
            while line := await reader.readline():
                command = line.decode().strip()
                self.commands.append(command)
                reply = self.answer(command)
                if reply is None:
                    return
                writer.write(reply.encode() + b"\n")
                await writer.drain()
                if command == "HANGUP":
                    return
            self.closed_by_server = True
        except ConnectionResetError:  # closed with our variables unread: refused
            self.closed_by_server = True
        finally:
            writer.close()

    @property
    def played(self) -> list[str]:
        """The sound files the caller heard (or started to hear)."""
        return [c.split()[2] for c in self.commands if c.startswith("STREAM FILE")]
