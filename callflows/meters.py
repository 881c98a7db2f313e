"""The meters part of a call: announce each meter, take its value, check, read back, store."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from callflows import escalation
from callflows.context import LOW_CONFIDENCE, Context
from callflows.intake import Verdict, check_reading, meter_in_service
from callflows.model import (
    Action,
    Finish,
    FlagReason,
    Hangup,
    MeterInfo,
    Note,
    RaiseFlag,
    Say,
    StoreReading,
    reason_words,
)
from callflows.prompts import gather_for, hours_say, meter_what, serial_tail
from callflows.state import CallState, Pending, Taken
from callflows.words import STEP_WORDS


@dataclass(frozen=True)
class Heard:
    """How a value came in: keyed, or spoken with what the recognizer made of it."""

    mode: str = "keypad"
    transcript: str | None = None
    confidence: float | None = None
    audio: str | None = None


def start_meters(state: CallState, ctx: Context, preface: list[Say]) -> list[Action]:
    """The caller is identified: go to the account's first meter in service."""
    state.meter_index = -1
    count = len(state.account.meters) if state.account else 0
    # One meter is named as "the one" in its own announcement (meter_intro_single).
    says = [*preface, Say("meter_count", {"count": count})] if count > 1 else preface
    return next_meter(state, ctx, says)


def _reset_meter(state: CallState) -> None:
    state.attempts, state.bad_input, state.spoken_hint_given = 0, False, False
    state.below_count, state.entries, state.pending = 0, 0, None


def next_meter(state: CallState, ctx: Context, preface: list[Say]) -> list[Action]:
    """Move to the next meter in service, skipping (and flagging) the others; end after the last."""
    actions: list[Action] = []
    says = list(preface)
    while True:
        state.meter_index += 1
        _reset_meter(state)
        meter = state.meter
        if meter is None:
            return actions + finish_call(state, ctx, says)
        service = meter_in_service(meter, ctx.local.date())
        if service == "ok":
            state.step = "value"
            return [*actions, gather_for(state, ctx.policy, says, full=True)]
        params: dict[str, object] = {"what": meter_what(meter), "serial": serial_tail(meter)}
        reason: FlagReason = "meter_inactive" if service == "inactive" else "meter_overdue"
        says.append(Say(reason, params))
        detail = "выведен из эксплуатации" if service == "inactive" else "истёк срок поверки"
        actions.append(RaiseFlag(reason, f"счётчик {meter.serial}: {detail}", meter.id))
        actions.append(Note("decision", f"счётчик {meter.serial} пропущен: {detail}", meter.id))


def finish_call(state: CallState, ctx: Context, says: list[Say]) -> list[Action]:
    """The summary naming each value taken (with `*` to hear it again), goodbye, hang up."""
    state.pending = None
    if state.stored:
        # The outcome is recorded now: a caller who hangs up during the summary is done.
        state.step, state.outcome = "summary", "completed"
        return [gather_for(state, ctx.policy, says, full=False), Finish("completed")]
    state.step, state.outcome = "done", "completed"
    if state.account is not None and not state.account.meters:
        says.append(Say("no_meters"))
    else:
        says.append(Say("summary_none"))
    says.append(Say("goodbye"))
    return [*says, Hangup(), Finish("completed")]


def retry(state: CallState, ctx: Context, preface: list[Say], bad: bool) -> list[Action]:
    """Ask the same meter prompt again, or give up on this meter after too many tries."""
    return escalation.failed(state, ctx, preface, bad, give_up_meter)


def give_up_meter(state: CallState, ctx: Context) -> list[Action]:
    """Flag the meter for an operator; then a transfer, the next meter, or (silent) goodbye."""
    meter = state.meter
    assert meter is not None
    reason: FlagReason = "caller_error" if state.bad_input else "no_input"
    what = "неверный ввод" if state.bad_input else "нет ответа"
    step = STEP_WORDS.get(state.step, state.step)
    detail = f"счётчик {meter.serial}: показание не получено ({what}, шаг «{step}»)"
    actions: list[Action] = []
    if state.pending is None:
        actions.append(RaiseFlag(reason, detail, meter.id))
    actions.append(Note("decision", f"{what}: счётчик пропущен", meter.id))
    kept = escalation.keep_pending(state, what)
    actions += [a for a in kept if not isinstance(a, Say)]
    # A value kept as flagged is what the caller hears about; otherwise that nothing was taken.
    given_up = [a for a in kept if isinstance(a, Say)] or [Say("meter_given_up")]
    if ctx.operator_reachable:
        return actions + escalation.transfer(state, ctx, "next", given_up)
    if not state.bad_input:
        # Silence again and again: the caller is lost or gone; more meters would only repeat it.
        says = [*given_up, *_call_back(ctx)]
        return actions + finish_call(state, ctx, says)
    return actions + next_meter(state, ctx, [*given_up, *_call_back(ctx)])


def _call_back(ctx: Context) -> list[Say]:
    if ctx.policy.operator_number is None:
        return [Say("call_back")]
    return [hours_say(ctx.policy), Say("call_back")]


def on_value(state: CallState, ctx: Context, value: Decimal, heard: Heard) -> list[Action]:
    """A value for the current meter: check it, then read it back or ask again."""
    meter = state.meter
    assert meter is not None
    verdict = check_reading(meter, value, ctx.now, ctx.policy.thresholds)
    notes: list[Action] = [Note("understood", f"значение {value}", meter.id)]
    if verdict.outcome == "too_many_digits":
        state.below_count = 0
        notes.append(Note("decision", f"{value}: не помещается в счётчик — переспросили", meter.id))
        key = "too_many_digits" if meter.decimal_digits else "too_many_digits_whole"
        params: dict[str, object] = {
            "integer_digits": meter.integer_digits,
            "decimal_digits": meter.decimal_digits,
        }
        return notes + retry(state, ctx, [Say(key, params)], bad=True)
    if verdict.outcome == "below_previous":
        state.below_count += 1
        if state.below_count < 2:
            text = f"меньше предыдущего {verdict.previous} — переспросили"
            notes.append(Note("decision", text, meter.id))
            say = Say("below_previous", {"previous": verdict.previous})
            return notes + retry(state, ctx, [say], bad=True)
    else:
        state.below_count = 0
    state.pending = _pending(state, ctx, value, verdict, heard)
    state.step, state.attempts, state.bad_input = "confirm", 0, False
    state.entries += 1
    decision = (
        f"повторили абоненту {value} для подтверждения: {reason_words(state.pending.flag_reason)}"
    )
    notes.append(Note("decision", decision, meter.id))
    return [*notes, gather_for(state, ctx.policy, [], full=True)]


def _pending(
    state: CallState, ctx: Context, value: Decimal, verdict: Verdict, heard: Heard
) -> Pending:
    pending = Pending(
        value=value,
        previous=verdict.previous,
        input_mode=heard.mode,
        transcript=heard.transcript,
        confidence=heard.confidence,
        audio=heard.audio,
    )
    if verdict.outcome == "below_previous":
        pending.status, pending.flag_reason = "flagged", "below_previous"
        pending.warning = "readback_below"
        pending.flag_detail = f"{value} меньше предыдущего {verdict.previous}, введено дважды"
    elif verdict.outcome == "anomalous":
        pending.status, pending.flag_reason = "flagged", "anomalous"
        pending.warning = "readback_anomalous"
        pending.flag_detail = (
            f"расход {verdict.consumption} с прошлого показания {verdict.previous}: "
            f"{verdict.monthly} в месяц при пределе {verdict.limit}"
        )
    if state.by_number and pending.flag_reason is None:
        # Found by account number and a second fact, not by caller ID: an operator looks.
        pending.status, pending.flag_reason = "flagged", "unverified_caller"
        pending.flag_detail = (
            "счёт найден по номеру и номеру квартиры или дома, не по номеру телефона"
        )
    if state.outside_window:
        first, last = ctx.policy.window_days
        late = f"передано {ctx.local:%d.%m.%Y} вне дней приёма {first}–{last}"
        if pending.flag_reason is None:
            pending.status, pending.flag_reason = "flagged", "outside_window"
        # One reading has one reason; the lateness still shows in the detail.
        pending.flag_detail = f"{pending.flag_detail}; {late}" if pending.flag_detail else late
    return pending


def on_confirm(state: CallState, ctx: Context, yes: bool) -> list[Action]:
    """1 stores the pending value at once; 2 asks for the value again."""
    meter = state.meter
    assert meter is not None
    if yes:
        return store(state, ctx)
    if state.entries >= ctx.policy.max_attempts:
        state.bad_input, state.pending = True, None
        return give_up_meter(state, ctx)
    state.step, state.pending, state.attempts, state.bad_input = "value", None, 0, False
    note = Note("decision", "не подтверждено — вводит заново", meter.id)
    return [note, gather_for(state, ctx.policy, [], full=False)]


def _store_action(pending: Pending, meter: MeterInfo) -> StoreReading:
    replaces = meter.current_period_reading_id if meter.current_period_value is not None else None
    return StoreReading(
        key=f"m{meter.id}",
        meter_id=meter.id,
        value=pending.value,
        status="flagged" if pending.status == "flagged" else "accepted",
        flag_reason=cast("FlagReason | None", pending.flag_reason),
        flag_detail=pending.flag_detail,
        replaces_reading_id=replaces,
        input_mode="speech" if pending.input_mode == "speech" else "keypad",
        transcript=pending.transcript,
        confidence=pending.confidence,
        audio=pending.audio,
    )


def store(state: CallState, ctx: Context) -> list[Action]:
    """Store the confirmed value now, then go to the next meter."""
    pending, meter = state.pending, state.meter
    assert pending is not None and meter is not None
    flagged = pending.status == "flagged"
    actions: list[Action] = [_store_action(pending, meter)]
    confidence = pending.confidence
    if pending.input_mode == "speech" and confidence is not None and confidence < LOW_CONFIDENCE:
        heard = f"«{pending.transcript}» понято как {pending.value}"
        actions.append(
            RaiseFlag("low_confidence", f"{heard}, уверенность {confidence:.2f}", meter.id)
        )
    state.stored += 1
    state.flagged += int(flagged)
    state.taken.append(Taken(meter.id, pending.value, "flagged" if flagged else "accepted"))
    status = f"на проверку ({reason_words(pending.flag_reason)})" if flagged else "принято"
    actions.append(Note("decision", f"подтверждено, сохранено {pending.value}: {status}", meter.id))
    say = Say("stored_flagged" if flagged else "stored")
    return actions + next_meter(state, ctx, [say])
