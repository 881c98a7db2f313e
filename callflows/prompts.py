"""What the caller hears at each step, built from the state: prompt keys and their parameters.

Every key named here is a table in ivr/prompts.ru.toml. Decimal and int parameters are spoken
as words by `ivr/` (a `unit` parameter names the unit a `{value:u}` placeholder agrees with);
str parameters are inserted as they are (digits spaced out so they are read one by one).
`*` repeats a prompt by building it again from the state.

Prompts taper: an instruction is said in full the first time the caller meets it, after an
error and on `*`; after that its short form. The second failure at a prompt gets a hint of what
to press instead (see callflows/escalation.py).
"""

from __future__ import annotations

import re
from typing import Literal

from callflows.model import AccountInfo, Gather, MeterInfo, Policy, Say
from callflows.state import CallState
from callflows.verify import second_fact

KIND_WORDS = {"hot_water": "горячая вода", "cold_water": "холодная вода", "heat": "отопление"}
# After a key, the next one must come within this many seconds, or the line acts on what it has:
# a lone `*` or `0` acts after KEY_GAP s, not after a long timeout.
KEY_GAP = 2
# ...but after the prompt the caller gets this long to start keying (an old phone, glasses).
FIRST_KEY_WAIT = 8
CHOICE_TIMEOUT = 6
SUMMARY_TIMEOUT = 3
MAX_CHOICES = 9
_CITY = re.compile(r"^\s*(\d{6}|г\.|г |город|[А-ЯЁа-яё-]+ (обл\.|область))", re.IGNORECASE)

Form = Literal["auto", "full", "hint"]
HINTS = {
    "value": "hint_value",
    "confirm": "hint_confirm",
    "account_number": "hint_account_number",
    "choose_account": "hint_choose_account",
}


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


def sounds_alike(account: AccountInfo | None, meter: MeterInfo) -> bool:
    """Whether another meter of the account has the same kind and place (so needs its serial)."""
    if account is None:
        return False
    what = meter_what(meter)
    return any(m.id != meter.id and meter_what(m) == what for m in account.meters)


def street_of(address: str) -> str:
    """The street and house of an address, without the postcode, region and city."""
    parts = [p.strip() for p in address.split(",") if p.strip()]
    while len(parts) > 1 and _CITY.match(parts[0]):
        parts.pop(0)
    return ", ".join(parts[:2])


def hour_text(hour: int, minute: int) -> int | str:
    """An hour as the words' source: 8, or '8:30' when minutes matter (for sound-file lists)."""
    return hour if minute == 0 else f"{hour}:{minute:02d}"


def hours_say(policy: Policy) -> Say:
    """When operators answer: «с восьми до двадцати часов», or with minutes when they matter."""
    (sh, sm), (eh, em) = policy.operator_hours
    if sm == 0 and em == 0:
        return Say("operator_hours", {"start": sh, "end": eh})
    params: dict[str, object] = {"start": sh, "start_minutes": sm, "end": eh, "end_minutes": em}
    return Say("operator_hours_minutes", params)


def window_say(prompt: str, policy: Policy) -> Say:
    """A prompt naming the submission days."""
    first, last = policy.window_days
    return Say(prompt, {"first": first, "last": last})


def name_say(state: CallState, meter: MeterInfo) -> Say:
    """The meter's name alone, said when a prompt is asked again (so the caller knows which)."""
    what = meter_what(meter)
    if sounds_alike(state.account, meter):
        return Say("meter_name_serial", {"what": what, "serial": serial_tail(meter)})
    return Say("meter_name", {"what": what})


def meter_prompts(state: CallState, meter: MeterInfo) -> list[Say]:
    """The announcement of a meter: which one, by kind and place (serial digits if needed)."""
    count = len(state.account.meters) if state.account else 1
    what = meter_what(meter)
    if sounds_alike(state.account, meter):
        params = {"number": state.meter_index + 1, "what": what, "serial": serial_tail(meter)}
        says = [Say("meter_intro_serial", params)]
    elif count == 1:
        says = [Say("meter_intro_single", {"what": what})]
    else:
        says = [Say("meter_intro", {"number": state.meter_index + 1, "what": what})]
    return says


def previous_say(meter: MeterInfo) -> list[Say]:
    """The meter's previous reading, said on `*` and with the hint (a guide to the digits)."""
    if not meter.history:
        return []
    return [Say("meter_previous", {"previous": meter.history[-1].value, "unit": meter.unit})]


def can_read_zero(meter: MeterInfo) -> bool:
    """A register that may show zero now: a new meter, or one whose last reading was zero."""
    return not meter.history or meter.history[-1].value == 0


def _instruction(state: CallState, step: str, form: Form) -> str:
    """'full', 'short' or 'hint': the form of a step's instruction the caller hears now."""
    if form == "hint":
        return "hint"
    if form == "full" or step not in state.told:
        if step not in state.told:
            state.told.append(step)
        return "full"
    return "short"


def value_prompts(state: CallState, policy: Policy, full: bool, form: Form) -> list[Say]:
    """Ask for a meter's value; `full` adds the announcement, a re-ask names the meter."""
    meter = state.meter
    assert meter is not None
    says = meter_prompts(state, meter) if full else [name_say(state, meter)]
    how = _instruction(state, "value", form)
    # Said only when asked for: on `*` and with the hint (it costs seconds on every meter).
    if form == "hint" or (full and form == "full"):
        says += previous_say(meter)
    mode = "speech" if policy.speech else "keypad"
    says.append(Say(HINTS["value"] if how == "hint" else f"value_{mode}_{how}"))
    if can_read_zero(meter) and (full or how != "short"):
        says.append(Say("value_zero_hint"))
    return says


def confirm_prompts(state: CallState, policy: Policy, again: bool, form: Form) -> list[Say]:
    """Read the pending value back, with any warning, and ask to confirm."""
    pending, meter = state.pending, state.meter
    assert pending is not None and meter is not None
    says = [name_say(state, meter)] if again else []
    readback = "readback_spoken" if pending.input_mode == "speech" else "readback_keyed"
    says.append(Say(readback, {"value": pending.value, "unit": meter.unit}))
    if pending.warning == "readback_below":
        says.append(Say("readback_below", {"previous": pending.previous, "unit": meter.unit}))
    elif pending.warning is not None:
        says.append(Say(pending.warning))
    current = meter.current_period_value
    if current is not None and current == pending.value:
        says.append(Say("readback_same"))
    elif current is not None:
        says.append(Say("readback_replaces", {"current": current, "unit": meter.unit}))
    how = _instruction(state, "confirm", form)
    mode = "speech" if policy.speech else "keypad"
    says.append(Say(HINTS["confirm"] if how == "hint" else f"confirm_{mode}_{how}"))
    return says


def choice_prompts(accounts: list[AccountInfo], form: Form) -> list[Say]:
    """Several accounts on one phone: each by its last digits and street, with its key."""
    says = [Say(HINTS["choose_account"] if form == "hint" else "choose_account")]
    for key, account in enumerate(accounts, start=1):
        params: dict[str, object] = {
            "tail": digits_apart(account.number[-4:]),
            "street": street_of(account.address) or "адрес не указан",
            "key": key,
        }
        says.append(Say("choose_account_option", params))
    return says


def summary_prompts(state: CallState) -> list[Say]:
    """Every reading taken in this call, by the meter's name, and how to hear it again."""
    meters = {m.id: m for m in (state.account.meters if state.account else ())}
    # `stored` counts what `taken` may not name: readings stored before a format-2 upgrade.
    says = [Say("summary", {"count": state.stored})]
    for taken in state.taken:
        meter = meters.get(taken.meter_id)
        what = meter_what(meter) if meter else "счётчик"
        if meter is not None and sounds_alike(state.account, meter):
            what = f"{what}, номер {serial_tail(meter)}"
        key = "summary_item_flagged" if taken.status == "flagged" else "summary_item"
        unit = meter.unit if meter else ""
        says.append(Say(key, {"what": what, "value": taken.value, "unit": unit}))
    return [*says, Say("summary_repeat"), Say("goodbye")]


def _keyed(prompts: list[Say], speech: bool = False) -> Gather:
    """A Gather for a keyed number ending with '#': a lone key acts after KEY_GAP seconds."""
    return Gather(
        tuple(prompts),
        finish_on_key="#",
        timeout=KEY_GAP,
        first_key_wait=FIRST_KEY_WAIT,
        speech=speech,
    )


def gather_for(
    state: CallState, policy: Policy, preface: list[Say], full: bool, form: Form = "auto"
) -> Gather:
    """The Gather for the current step, with `preface` spoken first inside it.

    `full` announces the meter (first time, `*`); `form` "full" repeats the whole
    instruction (after an error), "hint" gives the hint of what to press instead.
    """
    step = state.step
    if step == "value":
        prompts = value_prompts(state, policy, full, form)
        return _keyed(preface + prompts, speech=policy.speech)
    if step == "confirm":
        prompts = confirm_prompts(state, policy, again=bool(preface), form=form)
        return Gather(
            tuple(preface + prompts), num_digits=1, timeout=CHOICE_TIMEOUT, speech=policy.speech
        )
    if step == "choose_account":
        prompts = choice_prompts(state.candidates, form)
        return Gather(tuple(preface + prompts), num_digits=1, timeout=CHOICE_TIMEOUT)
    if step == "account_number":
        key = "hint_account_number" if form == "hint" else "account_number"
        return _keyed([*preface, Say(key)])
    fact = second_fact(state.candidates[0]) if step == "second_fact" else None
    if fact is not None:
        return _keyed([*preface, Say(fact.prompt)])
    if step == "summary":
        return Gather(
            tuple(preface + summary_prompts(state)), num_digits=1, timeout=SUMMARY_TIMEOUT
        )
    raise ValueError(f"no prompt at step {step!r}")
