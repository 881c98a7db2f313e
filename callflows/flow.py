"""The call flow as a pure state machine: one webhook, one event, a new state and actions.

Keys, decided here:

- `*` alone repeats the current prompt, wherever the caller is. At a value prompt a `*` among
  digits is the decimal separator (`123*45#` is 123.45), so only a lone `*` repeats there.
- `0` alone asks for the operator, wherever the caller is: a transfer during operator hours;
  outside them, or with no operator number configured, the line says so and asks again (this
  counts as no failed attempt). `0#` at the value prompt of a meter whose register can read
  zero (a new meter, or one last read as zero) is the value zero; elsewhere it is `0`. `00`
  is zero too.
- A lone key acts at once: value prompts wait only KEY_GAP seconds after a key (callflows/
  prompts.py), and choices take one key.
- A trailing `#` in `digits` is ignored (some adapters pass the finishing key along).

Speech (when the policy enables it, at value and confirm prompts only): keys always win (the
adapter sends Keys when keys came). A spoken value below MIN_CONFIDENCE counts as not understood;
the first time the caller is asked to key it in instead. A confirmed spoken value below
LOW_CONFIDENCE is stored, and an operator is asked to check it (a low_confidence flag).

Silence or unusable input climbs the ladder in callflows/escalation.py: re-ask in full, then a
hint and the operator offer, then a transfer (during hours) or a flag and the hours to call
back in. A value read back but never confirmed is stored flagged (not_confirmed) at a transfer
or a give-up. After the last meter the summary names each value; `*` says it again.
"""

from __future__ import annotations

import copy

from callflows import escalation, identify, meters
from callflows.context import MIN_CONFIDENCE, Context
from callflows.intake import parse_keyed
from callflows.model import (
    Action,
    CallEnded,
    CallStarted,
    Directory,
    Event,
    Finish,
    Hangup,
    Keys,
    Note,
    Policy,
    RaiseFlag,
    Say,
    Silence,
    Spoken,
    TransferEnded,
)
from callflows.prompts import can_read_zero, gather_for, hours_say
from callflows.state import CallState
from callflows.words import CALL_STATUS_WORDS, STEP_WORDS

METER_STEPS = ("value", "confirm")


def advance(
    state: CallState | None,
    event: Event,
    directory: Directory,
    policy: Policy,
    *,
    owned: bool = False,
) -> tuple[CallState, list[Action]]:
    """One webhook, one event: the next state and what to do. `state` is None on CallStarted.

    `state` is left as it was, unless `owned`: the caller hands over a state it will not use
    again (a webhook's, just parsed from the call's row), which then changes in place instead
    of being deep-copied first (a fifth of the flow's cost per webhook)."""
    ctx = Context(directory, policy, event.now)
    if isinstance(event, CallStarted):
        if state is not None:
            raise ValueError("CallStarted for a call that has already started")
        return identify.on_call_started(event, ctx)
    if isinstance(event, CallEnded):
        return on_call_ended(state, event, owned=owned)
    if state is None:
        raise ValueError(f"{type(event).__name__} before the call started")
    if not owned:
        state = copy.deepcopy(state)
    if state.finished:
        return state, [Hangup()]
    if state.step == "start":
        raise ValueError(f"{type(event).__name__} at step 'start'")
    if isinstance(event, TransferEnded):
        return state, escalation.on_transfer_ended(state, ctx, event, meters.next_meter)
    if state.step == "transfer":
        raise ValueError(f"{type(event).__name__} while the call is with an operator")
    if state.step == "summary":
        return state, on_summary(state, ctx, event)
    if isinstance(event, Keys):
        return state, on_keys(state, ctx, event)
    if isinstance(event, Silence):
        note = Note("input", "тишина", _meter_id(state))
        return state, [note, *retry(state, ctx, [Say("not_heard")], bad=False)]
    return state, on_spoken(state, ctx, event)


def _meter_id(state: CallState) -> int | None:
    meter = state.meter if state.step in METER_STEPS else None
    return None if meter is None else meter.id


def retry(state: CallState, ctx: Context, preface: list[Say], bad: bool) -> list[Action]:
    """Ask the current prompt again, or give up after too many failures."""
    if state.step in METER_STEPS:
        return meters.retry(state, ctx, preface, bad)
    return identify.retry(state, ctx, preface, bad)


def repeat(state: CallState, ctx: Context) -> list[Action]:
    """Say the current prompt again, in full."""
    return [gather_for(state, ctx.policy, [], full=True, form="full")]


def operator(state: CallState, ctx: Context) -> list[Action]:
    """Transfer to an operator when one answers now; otherwise say why not and ask again."""
    policy, meter_id = ctx.policy, _meter_id(state)
    if ctx.operator_reachable:
        resume = "next" if state.step == "confirm" else state.step
        return escalation.transfer(state, ctx, resume, [])
    if policy.operator_number is None:
        preface = [Say("operator_unavailable")]
        note = Note("decision", "оператор: номер не настроен — переспросили", meter_id)
    else:
        preface = [Say("operator_closed"), hours_say(policy)]
        note = Note("decision", "оператор: нерабочее время — переспросили", meter_id)
    return [note, gather_for(state, policy, preface, full=False)]


def on_keys(state: CallState, ctx: Context, event: Keys) -> list[Action]:
    """Keys pressed at the current prompt."""
    raw = event.digits.strip()
    digits = raw.removesuffix("#")
    notes: list[Action] = [Note("input", f"нажато: {event.digits}", _meter_id(state))]
    if digits == "*":
        return notes + repeat(state, ctx)
    if digits == "0" and not _zero_reading(state, raw):
        return notes + operator(state, ctx)
    if state.step == "value":
        value = parse_keyed(digits)
        if value is None:
            return notes + retry(state, ctx, [Say("not_understood")], bad=True)
        return notes + meters.on_value(state, ctx, value, meters.Heard())
    if state.step == "confirm" and digits in ("1", "2"):
        return notes + meters.on_confirm(state, ctx, yes=digits == "1")
    if state.step == "choose_account":
        return notes + identify.on_choice(state, ctx, digits)
    if state.step == "account_number":
        return notes + identify.on_account_number(state, ctx, digits)
    if state.step == "second_fact":
        return notes + identify.on_second_fact(state, ctx, digits)
    return notes + retry(state, ctx, [Say("not_understood")], bad=True)


def _zero_reading(state: CallState, raw: str) -> bool:
    """`0#` at the value prompt of a register that can read zero is the value, not the operator."""
    meter = state.meter
    return state.step == "value" and raw == "0#" and meter is not None and can_read_zero(meter)


def on_summary(state: CallState, ctx: Context, event: Keys | Silence | Spoken) -> list[Action]:
    """After the summary: `*` (or «повторите») says it again; anything else ends the call."""
    answer = event.answer if isinstance(event, Spoken) else None
    digits = event.digits.strip().removesuffix("#") if isinstance(event, Keys) else ""
    if digits == "*" or answer == "repeat":
        return [Note("input", "итог повторён"), gather_for(state, ctx.policy, [], full=True)]
    state.step = "done"
    return [Hangup()]


def on_spoken(state: CallState, ctx: Context, event: Spoken) -> list[Action]:
    """Something the recognizer heard at the current prompt."""
    heard = f"сказано: «{event.transcript}» ({event.confidence:.2f})"
    notes: list[Action] = [Note("input", heard, _meter_id(state))]
    if event.answer == "repeat":
        return notes + repeat(state, ctx)
    if event.answer == "operator":
        return notes + operator(state, ctx)
    if state.step == "value":
        return notes + _spoken_value(state, ctx, event)
    if state.step == "confirm" and event.answer in ("yes", "no"):
        return notes + meters.on_confirm(state, ctx, yes=event.answer == "yes")
    return notes + retry(state, ctx, [Say("not_understood")], bad=True)


def _spoken_value(state: CallState, ctx: Context, event: Spoken) -> list[Action]:
    if event.value is None or event.confidence < MIN_CONFIDENCE:
        first = not state.spoken_hint_given
        state.spoken_hint_given = True
        say = Say("speech_not_understood" if first else "not_understood")
        return retry(state, ctx, [say], bad=True)
    heard = meters.Heard("speech", event.transcript, event.confidence, event.audio)
    return meters.on_value(state, ctx, event.value, heard)


def on_call_ended(
    state: CallState | None, event: CallEnded, *, owned: bool = False
) -> tuple[CallState, list[Action]]:
    """The status callback: a call that ends before the flow finished was dropped. `state` is
    left as it was unless `owned` (as in `advance`)."""
    if state is None:
        status = CALL_STATUS_WORDS.get(event.status, event.status)
        detail = f"звонок завершился до начала ({status})"
        return CallState(step="done", outcome="dropped"), [
            RaiseFlag("dropped_call", detail),
            Finish("dropped"),
        ]
    if not owned:
        state = copy.deepcopy(state)
    if state.finished:
        return state, []
    if state.step == "summary":  # hung up after hearing what was taken: a normal end
        state.step = "done"
        return state, []
    if state.step == "transfer":
        # The call ended with the operator's line before a result came (a back end that does
        # not report one, or a caller who hung up while it rang): the transfer was made.
        state.step, state.outcome = "done", "transferred"
        status = CALL_STATUS_WORDS.get(event.status, event.status)
        note = Note("decision", f"звонок завершён во время перевода на оператора ({status})")
        return state, [note, Finish("transferred")]
    meter_id = _meter_id(state)
    detail = (
        f"звонок прервался на шаге «{STEP_WORDS.get(state.step, state.step)}» "
        f"({CALL_STATUS_WORDS.get(event.status, event.status)}); "
        f"сохранено показаний: {state.stored}"
    )
    if state.pending is not None:
        detail += f"; не подтверждено: {state.pending.value}"
    # A value read back but not confirmed stays in the flag's detail, not stored: Twilio may
    # deliver this callback before the step that confirms it (the step is still served).
    state.step, state.outcome = "done", "dropped"
    return state, [RaiseFlag("dropped_call", detail, meter_id), Finish("dropped")]
