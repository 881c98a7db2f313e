"""Russian words the operator view shows for the codes stored in the database."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation

from callflows.intake import Verdict
from callflows.model import FLAG_REASON_WORDS
from callflows.words import CALL_STATUS_WORDS, STEP_WORDS
from ivr.russian import number

REASONS: dict[str, str] = FLAG_REASON_WORDS

KINDS = {"hot_water": "Горячая вода", "cold_water": "Холодная вода", "heat": "Отопление"}
READING_STATUSES = {"accepted": "принято", "flagged": "на проверке", "rejected": "отклонено"}
FLAG_STATUSES = {"open": "открыт", "resolved": "решён", "all": "все"}
RESOLUTIONS = {
    "accepted": "принято как есть",
    "corrected": "исправлено",
    "rejected": "отклонено",
    "closed": "закрыто",
}
ACTIONS = {
    "accept": "Принято как есть",
    "close": "Закрыто",
    "correct": "Значение исправлено",
    "reject": "Отклонено",
    "call_back": "Перезвонить",
    "manual_entry": "Ручной ввод",
    "operator_add": "Добавлен оператор",
    "operator_deactivate": "Оператор отключён",
    "password_reset": "Пароль сброшен",
    "operator_unlock": "Вход оператора разблокирован",
    "operator_sign_out": "Сеансы оператора завершены",
}
EVENT_KINDS = {
    "prompt": "Линия",
    "input": "Абонент",
    "understood": "Понято",
    "decision": "Решение",
    "status": "Статус",
}
MODES = {"keypad": "Клавиатура", "speech": "Речь", "operator": "Оператор", "import": "Импорт"}
STEPS = STEP_WORDS
CALL_STATUSES = CALL_STATUS_WORDS
OUTCOMES = {
    "completed": "завершён",
    "dropped": "прерван",
    "transferred": "переведён на оператора",
    "operator_unanswered": "оператор не ответил",
    "error": "сбой",
    "rate_limited": "слишком много звонков",
    "outside_window": "вне срока приёма",
}
SOURCES = {"ivr": "линия", "operator": "оператор", "import": "импорт"}


def label(table: dict[str, str], code: str | None) -> str:
    """The Russian word for a code, or the code itself when unknown."""
    if code is None:
        return "—"
    return table.get(code, code)


def num(value: Decimal | float | int | None) -> str:
    """A number as Russians write it (the one formatter, `ivr.russian.number`).

    >>> num(Decimal("130.500"))
    '130,5'
    """
    return number(value)


# A decimal number inside stored free text (flag details, timeline notes), not a date's part.
_DECIMAL_IN_TEXT = re.compile(r"(?<![\d.,])\d+\.\d+(?![\d.])")


def prose(text: str | None) -> str:
    """Stored free text with its decimal numbers in Russian form.

    >>> prose("расход 163.9 с прошлого показания 25.11 при пределе 5.956, 23.03.2026")
    'расход 163,9 с прошлого показания 25,11 при пределе 5,956, 23.03.2026'
    """
    if not text:
        return ""
    return _DECIMAL_IN_TEXT.sub(lambda m: number(Decimal(m.group(0))), text)


def period_words(period: str | None) -> str:
    """A period YYYY-MM as its Russian month: «март 2026»; anything else as it is."""
    if not period or len(period) != 7 or period[4] != "-":
        return period or "—"
    from babel.dates import format_date

    try:
        first = date(int(period[:4]), int(period[5:]), 1)
    except ValueError:
        return period
    return str(format_date(first, "LLLL yyyy", locale="ru"))


def call_modes(raw: str | None) -> str:
    """How a call's readings were given («keypad,speech»), in words: «Клавиатура и речь»."""
    codes = [code for code in (raw or "").split(",") if code and code != "—"]
    if not codes:
        return "Без ввода показаний"
    words = " и ".join(label(MODES, code).lower() for code in codes)
    return words[:1].upper() + words[1:]


def reading_mode(raw: str | None) -> str:
    """How one reading was given, or that it was not recorded (older readings)."""
    if not raw or raw == "—":
        return "Способ не записан"
    return label(MODES, raw)


def local_time(moment: datetime | None, zone: tzinfo, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """A UTC moment shown in the utility's time zone."""
    if moment is None:
        return "—"
    return moment.astimezone(zone).strftime(fmt)


def consequence(verdict: Verdict, unit: str, due: date | None = None) -> str:
    """What a value would mean, in the words an operator reads before saving."""
    if verdict.outcome == "below_previous":
        return f"ниже предыдущего {num(verdict.previous)}"
    if verdict.outcome == "anomalous":
        return f"расход за месяц {num(verdict.monthly)} при норме до {num(verdict.limit)} {unit}"
    if verdict.outcome == "too_many_digits":
        return "больше разрядов, чем у счётчика"
    if verdict.outcome == "inactive":
        return "счётчик выведен из работы"
    if verdict.outcome == "overdue":
        when = f" (до {due:%d.%m.%Y})" if due else ""
        return f"просрочена поверка{when}: показание не пойдёт в расчёт"
    parts = ["проверка пройдена"]
    if verdict.consumption is not None:
        parts.append(f"расход {num(verdict.consumption)} {unit}")
    if verdict.rollover:
        parts.append("переход счётчика через ноль")
    return ", ".join(parts)


AUDIT_KEYS = {
    "value": "значение",
    "status": "статус",
    "period": "период",
    "note": "заметка",
    "login": "логин",
    "admin": "администратор",
    "meter": "счётчик",
    "account": "лицевой счёт",
    "check": "проверка",
    "replaced": "заменены показания",
}


def _audit_value(key: str, value: object) -> str:
    if key == "status":
        return label(READING_STATUSES, str(value))
    if key == "check":
        return "пройдена" if value == "ok" else label(REASONS, str(value))
    if key == "value":
        try:
            return num(Decimal(str(value)))
        except InvalidOperation:
            return str(value)
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, list):
        return ", ".join(f"№ {v}" for v in value)
    return str(value)


def audit_summary(raw: str) -> str:
    """An audit entry's before/after JSON as a short Russian line.

    >>> audit_summary('{"value": "136.5", "status": "accepted", "reading_id": 7}')
    'значение 136,5, статус принято'
    """
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return raw
    if not isinstance(data, dict):
        return raw
    parts = [
        f"{AUDIT_KEYS.get(key, key)} {_audit_value(key, value)}"
        for key, value in data.items()
        if key not in ("reading_id", "replaced_by_id") and value not in (None, [], "")
    ]
    return ", ".join(parts)
