"""The second fact a caller must confirm before hearing about an account found by its number.

A caller whose number is not bound to the account could be anyone who guessed an account
number; before the line reads out the address or previous readings, they key a number
printed on the receipt that the account number alone does not give away: the flat number,
or the house number when the address has no flat (a private house).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from callflows.model import AccountInfo

_FLAT = re.compile(r"(?<![А-Яа-яЁё])кв(?:\.|артира)?\s*№?\s*(\d{1,5})", re.IGNORECASE)
_HOUSE = re.compile(r"(?<![А-Яа-яЁё])(?:д\.|дом)\s*№?\s*(\d{1,5})", re.IGNORECASE)


@dataclass(frozen=True)
class SecondFact:
    """What the caller is asked for, and the digits expected."""

    kind: str  # flat | house
    digits: str

    @property
    def prompt(self) -> str:
        """The prompt that asks for it."""
        return f"second_fact_{self.kind}"

    @property
    def words(self) -> str:
        """Its name in the timeline."""
        return "квартиры" if self.kind == "flat" else "дома"


def second_fact(account: AccountInfo) -> SecondFact | None:
    """The flat number of the account's address, else its house number, else None.

    >>> second_fact(AccountInfo(1, "1", "г. Вологда, ул. Мира, д. 5, кв. 12"))
    SecondFact(kind='flat', digits='12')
    >>> second_fact(AccountInfo(1, "1", "д. Огарково, дом 7"))
    SecondFact(kind='house', digits='7')
    """
    for kind, pattern in (("flat", _FLAT), ("house", _HOUSE)):
        found = pattern.search(account.address)
        if found:
            return SecondFact(kind, found[1].lstrip("0") or "0")
    return None


def matches(fact: SecondFact, digits: str) -> bool:
    """Whether the keyed digits are the fact (leading zeros aside)."""
    return digits.isdigit() and (digits.lstrip("0") or "0") == fact.digits
