"""The call state survives JSON between requests, and anything corrupt is a ValueError."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callflows.flow import advance
from callflows.model import Keys, Policy, StoreReading
from callflows.snapshot import AccountTexts, account_to_json
from callflows.state import FORMAT, UPGRADES, CallState, Pending
from tests.unit.fakes import NOW, Call, FakeDirectory, make_account, make_meter

PHONE = "+78172123456"


def confirming() -> CallState:
    """A state at the confirmation, with a full account snapshot and a pending value."""
    meter = make_meter(
        1,
        "100.125",
        "130",
        location="ванная",
        verification_due=date(2030, 1, 1),
        current_period_value=Decimal("131.5"),
        current_period_reading_id=5,
    )
    d = FakeDirectory()
    d.add(make_account(1, meter, make_meter(2, kind="heat", active=False)), PHONE)
    call = Call(d)
    call.start()
    call.spoken("сто сорок", confidence=0.7, value="140.25")
    assert call.state is not None
    return call.state


def test_a_state_round_trips_through_json() -> None:
    state = confirming()
    again = CallState.from_json(state.to_json())
    assert again == state
    assert again.pending is not None and again.pending.value == Decimal("140.25")
    assert again.meter is not None and again.meter.history[0].value == Decimal("100.125")
    assert again.meter.current_period_value == Decimal("131.5")


def test_decimals_travel_as_text_and_dates_as_iso() -> None:
    data = json.loads(confirming().to_json())
    meter = data["account"]["meters"][0]
    assert meter["history"][0] == {"value": "100.125", "taken_at": "2026-09-23T07:00:00+00:00"}
    assert meter["verification_due"] == "2030-01-01"
    assert data["pending"]["value"] == "140.25"


def _written_whole(state: CallState) -> str:
    """The state as one json.dumps of all of it, as to_json wrote it before it kept texts."""
    data = json.loads(state.to_json())
    data["account"] = None if state.account is None else account_to_json(state.account)
    data["candidates"] = [account_to_json(a) for a in state.candidates]
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def choosing() -> CallState:
    accounts = [make_account(n, make_meter(n, "1.5", "2")) for n in (7, 8)]
    return CallState(step="choose_account", caller=PHONE, candidates=accounts)


@pytest.mark.parametrize("make", [confirming, choosing, CallState], ids=lambda f: f.__name__)
def test_the_json_is_one_sorted_dump_of_the_whole_state(make: Any) -> None:
    state = make()
    written = state.to_json()
    assert written == _written_whole(state)
    again = CallState.from_json(written)
    assert again == state and again.to_json() == written


def test_an_account_is_written_back_as_it_was_read_and_reads_the_same() -> None:
    data = json.loads(confirming().to_json())
    data["account"]["address"] = "ул. Новая, д. 2"
    raw = json.dumps(data, sort_keys=True)  # ASCII-escaped: not how to_json writes it
    state = CallState.from_json(raw)
    assert state.account is not None and state.account.address == "ул. Новая, д. 2"
    written = state.to_json()
    assert json.loads(written) == json.loads(raw)
    assert CallState.from_json(written) == state


def test_an_account_changed_after_it_was_read_is_written_as_it_is_now() -> None:
    state = CallState.from_json(confirming().to_json())
    assert state.account is not None
    state.account = replace(state.account, address="ул. Другая, д. 3")
    written = state.to_json()
    assert written == _written_whole(state)
    assert CallState.from_json(written).account == state.account


def test_an_account_corrupted_in_a_state_read_before_is_still_refused() -> None:
    written = confirming().to_json()
    CallState.from_json(written)
    corrupt = written.replace('"serial": "', '"serial": 5, "x": "', 1)
    with pytest.raises(ValueError):
        CallState.from_json(corrupt)
    twice = written[:-1] + ', "account": null}'
    with pytest.raises(ValueError, match="without a meter"):  # the last "account" counts
        CallState.from_json(twice)


def test_a_fresh_state_round_trips() -> None:
    assert CallState.from_json(CallState().to_json()) == CallState()


def test_finished_means_done() -> None:
    assert CallState(step="done").finished and not CallState(step="value").finished


def mutate(path: list[Any], value: object) -> str:
    data = json.loads(confirming().to_json())
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[]",
        "null",
        '"a string"',
        "{}",
        mutate(["format"], 99),
        mutate(["step"], "dancing"),
        mutate(["step"], 3),
        mutate(["attempts"], "1"),
        mutate(["attempts"], True),
        mutate(["outside_window"], 1),
        mutate(["stored"], KeyError),
        mutate(["caller"], 78172),
        mutate(["candidates"], {}),
        mutate(["account"], []),
        mutate(["account", "meters", 0, "kind"], "gas"),
        mutate(["account", "meters", 0, "id"], "1"),
        mutate(["account", "meters", 0, "history", 0, "value"], "a lot"),
        mutate(["account", "meters", 0, "history", 0, "value"], "NaN"),
        mutate(["account", "meters", 0, "history", 0, "value"], 100),
        mutate(["account", "meters", 0, "history", 0, "taken_at"], "yesterday"),
        mutate(["account", "meters", 0, "verification_due"], "soon"),
        mutate(["account", "meters", 0, "history"], "none"),
        mutate(["pending"], None),  # a confirmation with nothing to confirm
        mutate(["pending", "status"], "maybe"),
        mutate(["pending", "confidence"], "high"),
        mutate(["pending", "value"], None),
        mutate(["meter_index"], 7),  # no such meter at a meter step
        mutate(["account"], None),
    ],
)
def test_a_corrupt_state_is_a_value_error(raw: str) -> None:
    with pytest.raises(ValueError):
        CallState.from_json(raw)


def test_choosing_without_candidates_is_corrupt() -> None:
    with pytest.raises(ValueError):
        CallState.from_json(CallState(step="choose_account").to_json())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.sampled_from(sorted(json.loads(CallState().to_json()))), JSON)
def test_any_field_replaced_by_any_json_parses_or_is_a_value_error(key: str, value: object) -> None:
    data = json.loads(confirming().to_json())
    data[key] = value
    try:
        CallState.from_json(json.dumps(data))
    except ValueError:
        pass


def test_pending_defaults_round_trip() -> None:
    pending = Pending(value=Decimal("1.5"))
    assert Pending.from_dict(pending.to_dict()) == pending


STATES = Path(__file__).parent / "states"
SAMPLES = sorted(STATES.glob("format_*.json"))


def test_a_sample_is_kept_for_every_past_format() -> None:
    kept = {int(p.stem.removeprefix("format_")) for p in SAMPLES}
    assert kept == set(range(1, FORMAT)) == set(UPGRADES)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_a_saved_state_of_every_past_format_is_upgraded_and_finishes_its_call(
    sample: Path,
) -> None:
    raw = sample.read_text(encoding="utf-8")
    assert json.loads(raw)["format"] < FORMAT
    state = CallState.from_json(raw)
    assert state.step == "confirm" and state.pending is not None and state.period == "2026-11"
    assert json.loads(state.to_json())["format"] == FORMAT
    directory = FakeDirectory()
    after, actions = advance(state, Keys(digits="1", now=NOW), directory, Policy())
    [stored] = [a for a in actions if isinstance(a, StoreReading)]
    assert stored.value == state.pending.value and after.stored == state.stored + 1


def test_the_format_1_upgrade_forgets_a_replaced_value_it_cannot_vouch_for() -> None:
    data = json.loads((STATES / "format_1.json").read_text(encoding="utf-8"))
    assert data["account"]["meters"][0]["current_period_value"] == "131.5"
    state = CallState.from_json(json.dumps(data))
    assert state.meter is not None and state.meter.current_period_value is None
    assert state.meter.history == confirming().meter.history  # type: ignore[union-attr]


@pytest.mark.parametrize("fmt", [0, 99, "1", True, None])
def test_an_unknown_format_is_refused(fmt: object) -> None:
    data = json.loads((STATES / "format_1.json").read_text(encoding="utf-8"))
    data["format"] = fmt
    with pytest.raises(ValueError, match="unknown format"):
        CallState.from_json(json.dumps(data))


def test_the_account_texts_keep_only_the_last_few_and_stay_exact() -> None:
    texts = AccountTexts(size=2)
    accounts = [make_account(n, make_meter(n, "1.5", "2")) for n in (1, 2, 3)]
    written = [texts.text(a) for a in accounts]
    assert len(texts._accounts) == len(texts._texts) == 2
    for account, text in zip(accounts, written, strict=True):
        assert texts.text(account) == json.dumps(account_to_json(account), ensure_ascii=False,
                                                 sort_keys=True)  # fmt: skip
        assert texts.account(text, json.loads(text)) == account
