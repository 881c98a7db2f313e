"""The flow's state, kept as JSON in the calls table (interface fixed; body being written)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CallState:
    """Where a call is; serialisable so any worker can serve the next step."""

    step: str = "start"

    @property
    def finished(self) -> bool:
        """True once the flow has said goodbye or transferred."""
        return self.step == "done"

    def to_json(self) -> str:
        """Serialise for the calls table."""
        raise NotImplementedError

    @classmethod
    def from_json(cls, raw: str) -> CallState:
        """Parse; raise ValueError on anything corrupt."""
        raise NotImplementedError
