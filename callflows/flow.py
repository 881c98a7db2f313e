"""The call flow as a pure state machine (interface fixed; body being written, issue 2)."""

from __future__ import annotations

from callflows.model import Action, Directory, Event, Policy
from callflows.state import CallState


def advance(
    state: CallState | None, event: Event, directory: Directory, policy: Policy
) -> tuple[CallState, list[Action]]:
    """One webhook, one event: the next state and what to do. `state` is None on CallStarted."""
    raise NotImplementedError
