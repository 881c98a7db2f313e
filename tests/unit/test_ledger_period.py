"""The ledger's period of a moment: the utility's local date against the submission window."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from storage.ledger import period_of

MSK = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("moment", "period"),
    [
        (datetime(2026, 11, 1, 0, 0, tzinfo=MSK), "2026-11"),
        (datetime(2026, 11, 25, 23, 59, tzinfo=MSK), "2026-11"),
        (datetime(2026, 11, 26, 0, 0, tzinfo=MSK), "2026-12"),
        (datetime(2026, 12, 25, 12, 0, tzinfo=MSK), "2026-12"),
        (datetime(2026, 12, 26, 0, 1, tzinfo=MSK), "2027-01"),
        (datetime(2026, 12, 31, 23, 0, tzinfo=MSK), "2027-01"),
        # 21:30 UTC on the 25th is already the 26th in Moscow.
        (datetime(2026, 11, 25, 21, 30, tzinfo=UTC), "2026-12"),
        (datetime(2026, 11, 25, 20, 59, tzinfo=UTC), "2026-11"),
    ],
)
def test_the_period_of_a_moment_follows_the_local_date_and_the_window(
    moment: datetime, period: str
) -> None:
    assert period_of(moment, MSK, (23, 25)) == period


def test_a_custom_window_moves_the_edge() -> None:
    assert period_of(datetime(2026, 11, 27, 12, tzinfo=MSK), MSK, (20, 27)) == "2026-11"
    assert period_of(datetime(2026, 11, 28, 0, tzinfo=MSK), MSK, (20, 27)) == "2026-12"
