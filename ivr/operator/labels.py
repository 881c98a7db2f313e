"""Russian words the operator view shows for the codes stored in the database."""

from __future__ import annotations

import json
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation

from callflows.intake import Verdict
from callflows.model import FLAG_REASON_WORDS

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
}
EVENT_KINDS = {
    "prompt": "Линия",
    "input": "Абонент",
    "understood": "Понято",
    "decision": "Решение",
    "status": "Статус",
}
MODES = {"keypad": "Клавиатура", "speech": "Речь", "operator": "Оператор", "import": "Импорт"}
STEPS = {
    "start": "приветствие",
    "choose_account": "выбор лицевого счёта",
    "account_number": "ввод лицевого счёта",
    "value": "ввод показания",
    "confirm": "подтверждение показания",
    "done": "после прощания",
}
OUTCOMES = {
    "completed": "завершён",
    "dropped": "прерван",
    "transferred": "переведён на оператора",
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
    """A number as Russians write it: no exponent, a comma before decimals.

    >>> num(Decimal("130.500"))
    '130,5'
    """
    if value is None:
        return "—"
    text = format(Decimal(str(value)).normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",")


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
