"""Webhooks as the network delivers them: duplicated, replayed late, out of order, racing.

Complements tests/webhooks/test_voice_calls.py (a replay right after a step, an old
"incoming" replayed, a step ahead of the call, a status callback before the last step) and
tests/e2e/test_keypad_line.py (six workers racing on one confirmation).
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

import pytest
from flask import Flask
from sqlalchemy import func, select

from storage.incoming import Incoming, IncomingStore
from storage.models import Account, Call, Counter, Flag, Reading
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW


@pytest.fixture
def meters(frozen_app: Flask) -> list[int]:
    """Account 1001001 (phone +79211234567): hot and cold water, last readings 109."""
    with frozen_app.extensions["meterline"].sessions() as session:
        account = add_account(session)
        ids = [
            add_meter(session, account, serial=serial, kind=kind, now=IN_WINDOW).id
            for serial, kind in (("0145678", "hot_water"), ("0245679", "cold_water"))
        ]
        session.commit()
        return ids


def _caller(app: Flask, sid: str | None = None) -> TwilioClient:
    client = TwilioClient(app.test_client(), TEST_TOKEN)
    if sid:
        client.call_sid = sid
    return client


def _readings(app: Flask) -> list[tuple[int, str, int | None]]:
    """(meter, value, replaced by) of every reading the line stored, oldest first."""
    with app.extensions["meterline"].sessions() as session:
        rows = session.execute(
            select(Reading.meter_id, Reading.value, Reading.replaced_by_id)
            .where(Reading.source == "ivr")
            .order_by(Reading.id)
        )
        return [(meter, str(value), replaced) for meter, value, replaced in rows]


def _flags(app: Flask) -> list[str]:
    with app.extensions["meterline"].sessions() as session:
        return list(session.scalars(select(Flag.reason).order_by(Flag.id)))


def _action(caller: TwilioClient) -> str:
    gather = caller.last.find("Gather") if caller.last is not None else None
    assert gather is not None
    return gather.get("action", "")


def test_an_incoming_duplicated_while_the_first_is_answered_gets_the_same_greeting(
    frozen_app: Flask, meters: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both requests find no call yet, both try to create it: the loser answers as the winner."""
    both_looked = threading.Barrier(2, timeout=5)
    read = IncomingStore.read

    def in_step(self: IncomingStore, *args: object, **kwargs: object) -> Incoming:
        found = read(self, *args, **kwargs)  # type: ignore[arg-type]
        both_looked.wait()  # both found no call, both counted it: then both write
        return found

    monkeypatch.setattr(IncomingStore, "read", in_step)
    sid = "CA" + "d" * 32
    answers: list[bytes] = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(
                _caller(frozen_app, sid).post("/voice/incoming", CallStatus="ringing").data
            )
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2 and answers[0] == answers[1]
    assert ET.fromstring(answers[0]).find("Gather") is not None
    assert _flags(frozen_app) == []
    with frozen_app.extensions["meterline"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 1
        assert session.scalar(select(Counter.count)) == 1  # one call counted, not two


def test_every_step_replayed_after_the_call_ended_gets_its_original_reply(
    frozen_app: Flask, meters: list[int]
) -> None:
    """Even with other keys: a late retry is answered from the record, never re-evaluated."""
    caller = _caller(frozen_app)
    originals = [ET.tostring(caller.start())]
    for keys in ("112", "1", "215", "1"):
        originals.append(ET.tostring(caller.answer(keys)))
    assert caller.post("/voice/status", CallStatus="completed").status_code == 200
    stored = _readings(frozen_app)
    assert [value for _, value, _ in stored] == ["112", "215"]
    replays = [caller.post("/voice/incoming", CallStatus="ringing")]
    replays += [caller.post(f"/voice/step?seq={seq}", Digits="999") for seq in range(1, 5)]
    assert [ET.tostring(ET.fromstring(r.data)) for r in replays] == originals
    assert _readings(frozen_app) == stored


def test_a_step_arriving_before_its_predecessor_does_not_derail_the_call(
    frozen_app: Flask, meters: list[int]
) -> None:
    caller = _caller(frozen_app)
    caller.start()
    early = caller.twiml("/voice/step?seq=2", Digits="1")  # the confirmation, too early
    assert early.find("Hangup") is not None and early.find("Gather") is None  # an apology
    assert _readings(frozen_app) == []
    caller.twiml("/voice/step?seq=1", Digits="112")  # the value, late
    assert "Принято." in spoken_text(caller.twiml("/voice/step?seq=2", Digits="1"))
    assert [value for _, value, _ in _readings(frozen_app)] == ["112"]


def test_two_calls_for_one_account_at_once_leave_one_current_reading(
    frozen_app: Flask, meters: list[int]
) -> None:
    """Both identified the account before either stored: the later confirmation replaces."""
    first, second = _caller(frozen_app), _caller(frozen_app)
    first.start()
    second.start()
    first.answer("112")
    second.answer("113")
    first.answer("1")
    second.answer("1")
    (meter_a, first_value, replaced_by), (meter_b, second_value, current) = _readings(frozen_app)
    assert meter_a == meter_b == meters[0]
    assert (first_value, second_value) == ("112", "113")
    assert replaced_by is not None and current is None


def test_a_second_call_sees_the_first_ones_reading_and_replaces_it_only_once_confirmed(
    frozen_app: Flask, meters: list[int]
) -> None:
    first = _caller(frozen_app)
    first.start()
    first.answer("112")
    first.answer("1")
    second = _caller(frozen_app)
    second.start()
    readback = spoken_text(second.answer("113"))
    assert "заменит переданное ранее за этот месяц: сто двенадцать" in readback
    assert [replaced for _, _, replaced in _readings(frozen_app)] == [None]
    second.answer("1")
    (_, _, replaced_by), (_, value, current) = _readings(frozen_app)
    assert value == "113" and replaced_by is not None and current is None


def test_a_status_callback_before_the_last_step_then_the_rest_of_the_call(
    frozen_app: Flask, meters: list[int]
) -> None:
    """Twilio's callbacks are not ordered with the steps: every later confirmation still counts."""
    caller = _caller(frozen_app)
    caller.start()
    caller.answer("112")
    assert caller.post("/voice/status", CallStatus="completed").status_code == 200
    caller.answer("1")
    caller.answer("215")
    assert "Принято два показания" in spoken_text(caller.answer("1"))
    assert [value for _, value, _ in _readings(frozen_app)] == ["112", "215"]


def test_a_status_callback_for_a_call_never_seen_is_answered_and_ignored(
    frozen_app: Flask,
) -> None:
    response = _caller(frozen_app).post("/voice/status", CallStatus="completed")
    assert response.status_code == 200
    with frozen_app.extensions["meterline"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 0
        assert session.scalar(select(func.count()).select_from(Account)) == 0
