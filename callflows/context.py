"""What every transition needs besides the state: lookups, policy and the time of the event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from callflows.intake import in_operator_hours
from callflows.model import Directory, Policy

# A spoken value below this confidence counts as not understood and is asked again.
MIN_CONFIDENCE = 0.4
# A spoken value below this confidence may be confirmed, but an operator is asked to check it.
LOW_CONFIDENCE = 0.6


@dataclass(frozen=True)
class Context:
    """One event's surroundings."""

    directory: Directory
    policy: Policy
    now: datetime

    @property
    def local(self) -> datetime:
        """The event's time in the line's time zone (a naive `now` is taken as UTC)."""
        now = self.now if self.now.tzinfo is not None else self.now.replace(tzinfo=UTC)
        return now.astimezone(ZoneInfo(self.policy.timezone))

    @property
    def operator_reachable(self) -> bool:
        """Whether a transfer to an operator can happen now."""
        policy = self.policy
        if policy.operator_number is None:
            return False
        return in_operator_hours(self.local.time(), policy.operator_hours)
