"""What the caller hears at each step, built from the state: prompt keys and their parameters.

Every key named here is a table in ivr/prompts.ru.toml. Decimal and int parameters are spoken
as words by `ivr/`; str parameters are inserted as they are (digits spaced out so they are read
one by one). `*` repeats a prompt by building it again from the state.
"""

from __future__ import annotations

import re

from callflows.model import AccountInfo, Gather, MeterInfo, Policy, Say
from callflows.state import CallState

KIND_WORDS = {"hot_water": "горячая вода", "cold_water": "холодная вода", "heat": "отопление"}
# A keyed value needs time: five digits, a star, decimals, then '#', on an old phone.
VALUE_TIMEOUT = 10
CHOICE_TIMEOUT = 6
MAX_CHOICES = 9
_CITY = re.compile(r"^\s*(\d{6}|г\.|г |город|[А-ЯЁа-яё-]+ (обл\.|область))", re.IGNORECASE)


def digits_apart(text: str) -> str:
    """'456' -> '4 5 6': read one by one, not as a number."""
    return " ".join(text)


def serial_tail(meter: MeterInfo) -> str:
    """The last three characters of the serial, spaced out."""
    return digits_apart(meter.serial[-3:])


def meter_what(meter: MeterInfo) -> str:
    """The meter in words: kind and location, e.g. 'горячая вода, кухня'."""
    kind = KIND_WORDS.get(meter.kind, meter.kind)
    return f"{kind}, {meter.location}" if meter.location else kind


def street_of(address: str) -> str:
    """The street and house of an address, without the postcode, region and city."""
    parts = [p.strip() for p in address.split(",") if p.strip()]
    while len(parts) > 1 and _CITY.match(parts[0]):
        parts.pop(0)
    return ", ".join(parts[:2])


def hour_text(hour: int, minute: int) -> int | str:
    """The hour as a number (spoken in words, «с восьми»), or '8:30' when minutes matter."""
    return hour if minute == 0 else f"{hour}:{minute:02d}"


def hours_say(policy: Policy) -> Say:
    """When operators answer."""
    (sh, sm), (eh, em) = policy.operator_hours
    return Say("operator_hours", {"start": hour_text(sh, sm), "end": hour_text(eh, em)})


def window_say(prompt: str, policy: Policy) -> Say:
    """A prompt naming the submission days."""
    first, last = policy.window_days
    return Say(prompt, {"first": first, "last": last})


def meter_prompts(meter: MeterInfo, meter_no: int) -> list[Say]:
    """The announcement of a meter: which one, and its previous reading."""
    params: dict[str, object] = {
        "number": meter_no,
        "what": meter_what(meter),
        "serial": serial_tail(meter),
    }
    says = [Say("meter_intro", params)]
    if meter.history:
        says.append(Say("meter_previous", {"previous": meter.history[-1].value}))
    return says


def value_prompts(state: CallState, policy: Policy, full: bool) -> list[Say]:
    """Ask for a meter's value; `full` adds the announcement (first time, and on repeat)."""
    meter = state.meter
    assert meter is not None
    says = []
    if full:
        says = meter_prompts(meter, state.meter_index + 1)
    says.append(Say("value_speech" if policy.speech else "value_keypad"))
    # A lone 0 calls the operator, so a zero reading is keyed as "00": only a new meter reads 0.
    if not meter.history or meter.history[-1].value == 0:
        says.append(Say("value_zero_hint"))
    return says


def confirm_prompts(state: CallState, policy: Policy) -> list[Say]:
    """Read the pending value back, with any warning, and ask to confirm."""
    pending, meter = state.pending, state.meter
    assert pending is not None and meter is not None
    readback = "readback_spoken" if pending.input_mode == "speech" else "readback_keyed"
    says = [Say(readback, {"value": pending.value})]
    if pending.warning == "readback_below":
        says.append(Say("readback_below", {"previous": pending.previous}))
    elif pending.warning is not None:
        says.append(Say(pending.warning))
    if meter.current_period_value is not None:
        says.append(Say("readback_replaces", {"current": meter.current_period_value}))
    says.append(Say("confirm_speech" if policy.speech else "confirm_keypad"))
    return says


def choice_prompts(accounts: list[AccountInfo]) -> list[Say]:
    """Several accounts on one phone: each by its last digits and street, with its key."""
    says = [Say("choose_account")]
    for key, account in enumerate(accounts, start=1):
        params: dict[str, object] = {
            "tail": digits_apart(account.number[-4:]),
            "street": street_of(account.address) or "адрес не указан",
            "key": key,
        }
        says.append(Say("choose_account_option", params))
    return says


def gather_for(state: CallState, policy: Policy, preface: list[Say], full: bool) -> Gather:
    """The Gather for the current step, with `preface` spoken first inside it."""
    step = state.step
    if step == "value":
        prompts = value_prompts(state, policy, full)
        return Gather(
            tuple(preface + prompts), finish_on_key="#", timeout=VALUE_TIMEOUT, speech=policy.speech
        )
    if step == "confirm":
        prompts = confirm_prompts(state, policy)
        return Gather(
            tuple(preface + prompts), num_digits=1, timeout=CHOICE_TIMEOUT, speech=policy.speech
        )
    if step == "choose_account":
        prompts = choice_prompts(state.candidates)
        return Gather(tuple(preface + prompts), num_digits=1, timeout=CHOICE_TIMEOUT)
    if step == "account_number":
        return Gather(tuple([*preface, Say("account_number")]), timeout=VALUE_TIMEOUT)
    raise ValueError(f"no prompt at step {step!r}")
