"""Test data for the operator view: an account whose hot-water meter got an anomalous value."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from ivr.operator.operators import add_operator
from storage.ledger import period_of
from storage.models import Account, Call, CallEvent, Flag, Meter, Phone, Reading

ZONE = ZoneInfo("Europe/Moscow")
WINDOW = (23, 25)
CALLER = "+79211234567"
ACCOUNT = "100200300"
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Seeded:
    """Ids of what was seeded."""

    account_id: int
    meter_id: int
    heat_meter_id: int
    call_id: int
    reading_id: int
    flag_id: int
    audio: str


def month_back(moment: datetime, months: int) -> datetime:
    """The 24th, 10:00 local, `months` months before `moment`'s month."""
    local = moment.astimezone(ZONE)
    index = local.year * 12 + local.month - 1 - months
    return datetime(index // 12, index % 12 + 1, 24, 10, tzinfo=ZONE).astimezone(UTC)


def write_wav(path: Path) -> None:
    """A short silent 8 kHz WAV, enough for an <audio> element."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 4000)


def seed(
    session: Session,
    now: datetime,
    audio_dir: Path | None = None,
    window: tuple[int, int] = WINDOW,
    commit: bool = True,
) -> Seeded:
    """An account, two meters with a year of history, a call with an anomalous flagged value.

    `commit=False` only flushes, for tests inside a rolled-back transaction."""
    account = Account(number=ACCOUNT, address="Вологда, ул. Мира, 1, кв. 5", supplier="Теплосеть")
    session.add(account)
    session.flush()
    session.add(Phone(account_id=account.id, e164=CALLER))
    hot = Meter(
        account_id=account.id,
        serial="ГВ-7001",
        kind="hot_water",
        unit="м³",
        integer_digits=5,
        decimal_digits=3,
        supplier="Теплосеть",
        location="кухня",
    )
    heat = Meter(
        account_id=account.id,
        serial="ОТ-7002",
        kind="heat",
        unit="Гкал",
        integer_digits=4,
        decimal_digits=3,
        supplier="Теплосеть",
    )
    session.add_all([hot, heat])
    session.flush()
    for months in range(12, 0, -1):
        taken = month_back(now, months)
        period = period_of(taken, ZONE, window)
        for meter, value in ((hot, 100 + 3 * (12 - months)), (heat, 10 + (12 - months))):
            session.add(
                Reading(
                    meter_id=meter.id,
                    value=Decimal(value),
                    taken_at=taken,
                    period=period,
                    source="ivr",
                    status="accepted",
                    input_mode="keypad",
                )
            )
    call = Call(
        call_sid="CA" + "0" * 30 + "01",
        caller=CALLER,
        account_id=account.id,
        started_at=now - timedelta(minutes=2),
        ended_at=now - timedelta(seconds=30),
        outcome="completed",
        input_modes="speech",
        state='{"step": "done"}',
    )
    session.add(call)
    session.flush()
    audio = f"{call.call_sid}/hot.wav"
    if audio_dir is not None:
        write_wav(audio_dir / audio)
    reading = Reading(
        meter_id=hot.id,
        value=Decimal(190),
        taken_at=now - timedelta(minutes=1),
        period=period_of(now, ZONE, window),
        source="ivr",
        status="flagged",
        call_id=call.id,
        input_mode="speech",
        transcript="сто девяносто",
        confidence=0.62,
        audio_file=audio,
    )
    session.add(reading)
    session.flush()
    start = now - timedelta(minutes=2)
    for seq, (kind, text, confidence, file) in enumerate(
        [
            ("prompt", "Назовите показание счётчика горячей воды", None, None),
            ("input", "сто девяносто", 0.62, audio),
            ("understood", "190", 0.62, None),
            ("decision", "Расход подозрительно большой: сохранено на проверку", None, None),
        ]
    ):
        session.add(
            CallEvent(
                call_id=call.id,
                at=start + timedelta(seconds=10 * seq),
                seq=seq,
                kind=kind,
                text=text,
                meter_id=hot.id,
                confidence=confidence,
                audio_file=file,
            )
        )
    flag = Flag(
        reason="anomalous",
        detail="расход за месяц 57 при норме до 9",
        call_id=call.id,
        reading_id=reading.id,
        meter_id=hot.id,
        account_id=account.id,
        created_at=now - timedelta(seconds=30),
    )
    session.add(flag)
    if commit:
        session.commit()
    else:
        session.flush()
    return Seeded(account.id, hot.id, heat.id, call.id, reading.id, flag.id, audio)


def operator(session: Session, login: str = "olga", admin: bool = False) -> int:
    """An operator with the test password; its id."""
    return add_operator(session, login, PASSWORD, admin, None, datetime.now(UTC)).id
