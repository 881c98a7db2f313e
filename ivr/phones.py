"""Phone numbers: normalise every spelling to E.164 before a lookup; mask them in logs."""

from __future__ import annotations

import re

import phonenumbers


def normalize(raw: str | None, city_code: str = "8172", region: str = "RU") -> str | None:
    """E.164 for +7…, 8…, 7… or a local number (city code prepended); None if not a number.

    >>> normalize("8 (8172) 59-79-04")
    '+78172597904'
    >>> normalize("59-79-04")
    '+78172597904'
    >>> normalize("anonymous") is None
    True
    """
    if not raw:
        return None
    digits = re.sub(r"\D", "", raw)
    if not digits or len(digits) > 15 or len(raw) > 40:
        return None
    candidate = raw.strip()
    national_len = 10 - len(city_code)
    if not candidate.startswith("+") and len(digits) == national_len:
        candidate = city_code + digits
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask(number: str | None) -> str:
    """A number as operators' lists and logs show it: the last four digits only.

    >>> mask("+78172597904")
    '+7 *** ***-79-04'
    """
    if not number:
        return "—"
    digits = re.sub(r"\D", "", number)
    if len(digits) < 4:
        return "***"
    country = "+7" if number.startswith("+7") else "+…"
    return f"{country} *** ***-{digits[-4:-2]}-{digits[-2:]}"
