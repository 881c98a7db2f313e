"""gunicorn's access log, with phone numbers masked (a number in a URL is personal data)."""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

from ivr.phones import mask

# A run of at least 7 digits, possibly with the separators people and URLs put in numbers
# (`+`, `%2B`, `-`, brackets, spaces as `%20` or `+`). Dots are left out: IP addresses stay.
_NUMBER = re.compile(r"(?:\+|%2[bB])?\d(?:[\d\-()+]|%20|%2[89])*\d")
# The atoms that carry what a client sent: request line, path, query, referer.
_CLIENT_ATOMS = ("r", "U", "q", "f")


def mask_numbers(text: str) -> str:
    """Every phone-number-like run in `text` masked to its last four digits.

    >>> mask_numbers("GET /operator/accounts?q=%2B79211234567 HTTP/1.1")
    'GET /operator/accounts?q=+7 *** ***-45-67 HTTP/1.1'
    >>> mask_numbers("GET /voice/step?seq=12 HTTP/1.1 from 192.168.100.200")
    'GET /voice/step?seq=12 HTTP/1.1 from 192.168.100.200'
    """

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        # A percent escape's hex digits are not the number's.
        digits = re.sub(r"\D", "", re.sub(r"%[0-9A-Fa-f]{2}", " ", found))
        if len(digits) < 7:
            return found
        plus = found.startswith(("+", "%2B", "%2b"))
        return mask(("+" if plus else "") + digits)

    return _NUMBER.sub(replace, text)


class MaskedLogger(Logger):
    """gunicorn's logger whose access lines never show a full phone number."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """gunicorn's atoms, with the client's text masked."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in _CLIENT_ATOMS:
            if isinstance(atoms.get(key), str):
                atoms[key] = mask_numbers(atoms[key])
        return atoms
