"""Field parsers for the billing centre's files; each raises RowError with a reason for IT staff."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

KINDS = ("hot_water", "cold_water", "heat")

# Spellings seen in Russian billing exports, lower-cased, spaces collapsed.
KIND_SYNONYMS = {
    "hot_water": "hot_water",
    "cold_water": "cold_water",
    "heat": "heat",
    "гвс": "hot_water",
    "горячая вода": "hot_water",
    "горячее водоснабжение": "hot_water",
    "хвс": "cold_water",
    "холодная вода": "cold_water",
    "холодное водоснабжение": "cold_water",
    "отопление": "heat",
    "тепло": "heat",
    "теплоэнергия": "heat",
    "тепловая энергия": "heat",
}

DEFAULT_UNITS = {"hot_water": "м3", "cold_water": "м3", "heat": "Гкал"}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Years a reading or a verification date may carry: older is a typo (0999 for 1999 or 2099),
# and Python's dates end at 9999 (an offset beyond that overflows).
YEARS = (1990, 2100)
# A phones field longer than this is not a list of an account's phones.
MAX_PHONES = 10
# Account numbers: letters (Latin or Cyrillic), digits and inner hyphens; they name the
# account's page in the operator view (/operator/accounts/NUMBER), where "/", "." or "?"
# would lead elsewhere, and callers key the digits.
_ACCOUNT = re.compile(r"[0-9A-Za-zЁА-Яа-яё](?:[0-9A-Za-zЁА-Яа-яё-]*[0-9A-Za-zЁА-Яа-яё])?")


class RowError(Exception):
    """A row cannot be imported; the message is the reason shown with its line number."""


def text(raw: str, column: str, max_len: int, required: bool = False) -> str:
    """A trimmed free-text field no longer than `max_len`."""
    value = " ".join(raw.split())
    if required and not value:
        raise RowError(f"{column} is empty")
    if len(value) > max_len:
        raise RowError(f"{column} is longer than {max_len} characters")
    if _CONTROL.search(value):
        raise RowError(f"{column} holds control characters")
    return value


def account_number(raw: str) -> str:
    """An account number: 1 to 32 letters, digits and inner hyphens.

    >>> account_number(" 100-200 ")
    '100-200'
    """
    value = text(raw, "account", 32, required=True)
    if not _ACCOUNT.fullmatch(value):
        raise RowError(f"account {value!r} may hold only letters, digits and hyphens between them")
    return value


def phones(raw: str, city_code: str, normalize: Callable[[str, str], str | None]) -> list[str]:
    """Zero or more numbers separated by `,` or `;`, each to E.164; order kept, repeats dropped.

    >>> from ivr.phones import normalize
    >>> phones("8 (8172) 59-79-04; 59-79-04, +7 921 123-45-67", "8172", normalize)
    ['+78172597904', '+79211234567']
    """
    parts = re.split(r"[,;]", raw)
    if len(parts) > MAX_PHONES:
        raise RowError(f"phones lists {len(parts)} numbers; at most {MAX_PHONES} per account")
    found: list[str] = []
    for part in parts:
        spelled = part.strip()
        if not spelled:
            continue
        e164 = normalize(spelled, city_code)
        if e164 is None:
            raise RowError(f"phone {spelled[:40]!r} is not a valid phone number")
        if e164 not in found:
            found.append(e164)
    return found


def kind(raw: str) -> str:
    """hot_water, cold_water or heat, also from Russian names such as ГВС or «отопление»."""
    key = " ".join(raw.lower().replace("_", " ").split())
    found = KIND_SYNONYMS.get(key) or KIND_SYNONYMS.get(key.replace(" ", "_"))
    if found is None:
        russian = ", ".join(name for name in KIND_SYNONYMS if name not in KINDS)
        raise RowError(
            f"meter_kind {raw[:40]!r} is not one of {', '.join(KINDS)} "
            f"(or, in Russian, any case: {russian})"
        )
    return found


def integer(raw: str, column: str, low: int, high: int, default: int) -> int:
    """A whole number in low..high; empty means `default`."""
    value = raw.strip()
    if not value:
        return default
    if not re.fullmatch(r"\d{1,3}", value) or not low <= int(value) <= high:
        raise RowError(f"{column} {value[:20]!r} is not a whole number from {low} to {high}")
    return int(value)


def day(raw: str, column: str) -> date | None:
    """YYYY-MM-DD or DD.MM.YYYY; empty means none."""
    value = raw.strip()
    if not value:
        return None
    try:
        found = None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            found = date.fromisoformat(value)
        elif re.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{4}", value):
            d, m, y = (int(part) for part in value.split("."))
            found = date(y, m, d)
        if found is not None:
            _sane_year(found, column, value)
            return found
    except ValueError:
        raise RowError(f"{column} {value!r} is not a real date") from None
    raise RowError(f"{column} {value[:30]!r} is not a date (expected YYYY-MM-DD or DD.MM.YYYY)")


def _sane_year(found: date, column: str, raw: str) -> None:
    if not YEARS[0] <= found.year <= YEARS[1]:
        raise RowError(f"{column} {raw[:40]!r}: the year must be from {YEARS[0]} to {YEARS[1]}")


_RU_DATETIME = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def moment(raw: str, tz: ZoneInfo) -> datetime:
    """An aware datetime from ISO 8601 or DD.MM.YYYY [HH:MM[:SS]]; no offset means local time."""
    value = raw.strip()
    try:
        m = _RU_DATETIME.fullmatch(value)
        if m:
            d, mo, y = int(m[1]), int(m[2]), int(m[3])
            clock = time(int(m[4] or 0), int(m[5] or 0), int(m[6] or 0))
            parsed = datetime.combine(date(y, mo, d), clock)
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}([ T].+)?", value):
            parsed = datetime.fromisoformat(value)
        else:
            raise RowError(
                f"taken_at {value[:40]!r} is not a date or time "
                "(expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][+03:00] or DD.MM.YYYY [HH:MM])"
            )
    except ValueError:
        raise RowError(f"taken_at {value[:40]!r} is not a real date or time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    _sane_year(parsed.date(), "taken_at", value)
    return parsed


def amount(raw: str) -> Decimal:
    """A non-negative exact decimal, `.` or `,` as the separator, spaces between digit groups.

    >>> amount("12 345,670")
    Decimal('12345.670')
    """
    value = re.sub(r"[\s\u00a0\u202f]", "", raw)
    if value.startswith("-") and re.fullmatch(r"-\d+([.,]\d+)?", value):
        raise RowError(f"value {raw.strip()!r} is negative")
    if not re.fullmatch(r"\d{1,18}([.,]\d{1,10})?", value):
        raise RowError(f"value {raw.strip()[:30]!r} is not a number such as 123.45 or 123,45")
    try:
        return Decimal(value.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern above admits only digits
        raise RowError(f"value {raw.strip()[:30]!r} is not a number") from None


def fits_register(value: Decimal, integer_digits: int, decimal_digits: int) -> str | None:
    """Why `value` cannot be shown on the meter's register, or None if it can.

    >>> fits_register(Decimal("123456.1"), 5, 3)
    'value 123456.1 has 6 integer digits, the register has 5'
    """
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    decimals = max(0, -exponent)
    whole = len(str(int(value))) if value >= 1 else 0
    shown = format(value, "f")
    if whole > integer_digits:
        return f"value {shown} has {whole} integer digits, the register has {integer_digits}"
    if decimals > decimal_digits:
        return f"value {shown} has {decimals} decimals, the register has {decimal_digits}"
    return None
