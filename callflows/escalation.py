"""A caller who is lost is led to a person: the re-ask ladder, and a transfer that cannot fail
silently.

The ladder, at any prompt: the first failure re-asks with the full instruction; the second
gives a hint of what to press and, during operator hours, offers `0`; the third gives up on the
prompt (the caller of meters.py or identify.py decides what that means) — a transfer during
operator hours, else a flag and the hours to call back in.

A transfer expects its result (TransferEnded). A value read back but not confirmed is stored
`flagged` (not_confirmed) before the transfer, and the caller is told; if no operator answers
the caller hears so and carries on from where they were, or, when nothing is left to carry on
with, is told the other ways to hand in readings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from callflows.context import Context
from callflows.model import (
    Action,
    Finish,
    Hangup,
    Note,
    Say,
    StoreReading,
    Transfer,
    TransferEnded,
)
from callflows.prompts import gather_for, hours_say
from callflows.state import RESUMES, CallState, Taken

GiveUp = Callable[[CallState, Context], list[Action]]
NextMeter = Callable[[CallState, Context, list[Say]], list[Action]]


def failed(
    state: CallState, ctx: Context, preface: list[Say], bad: bool, give_up: GiveUp
) -> list[Action]:
    """One more failure at the current prompt: re-ask, hint and offer the operator, or give up."""
    state.attempts += 1
    state.bad_input = state.bad_input or bad
    if state.attempts >= ctx.policy.max_attempts:
        return give_up(state, ctx)
    if state.attempts == 1:
        return [gather_for(state, ctx.policy, preface, full=False, form="full")]
    offer = [Say("offer_operator")] if ctx.operator_reachable else []
    return [gather_for(state, ctx.policy, preface + offer, full=False, form="hint")]


def keep_pending(state: CallState, why: str) -> list[Action]:
    """Store the value read back but not confirmed as flagged, and tell the caller so."""
    pending, meter = state.pending, state.meter
    if pending is None or meter is None:
        return []
    state.pending = None
    state.stored += 1
    state.flagged += 1
    state.taken.append(Taken(meter.id, pending.value, "flagged"))
    detail = f"значение прочитано звонившему, но не подтверждено ({why})"
    mode: Literal["keypad", "speech"] = "speech" if pending.input_mode == "speech" else "keypad"
    return [
        StoreReading(
            key=f"m{meter.id}",
            meter_id=meter.id,
            value=pending.value,
            status="flagged",
            flag_reason="not_confirmed",
            flag_detail=detail,
            input_mode=mode,
            transcript=pending.transcript,
            confidence=pending.confidence,
            audio=pending.audio,
        ),
        Note("decision", f"не подтверждено, сохранено {pending.value} на проверку", meter.id),
        Say("pending_flagged", {"value": pending.value, "unit": meter.unit}),
    ]


def transfer(state: CallState, ctx: Context, resume: str, preface: list[Say]) -> list[Action]:
    """Hand the caller to an operator (who must be reachable), keeping any pending value."""
    assert ctx.policy.operator_number is not None and resume in RESUMES
    meter = state.meter if state.step in ("value", "confirm") else None
    kept = keep_pending(state, "перевод на оператора")
    if kept and resume == "value":
        resume = "next"  # the pending value is stored: this meter is done
    state.step, state.resume = "transfer", resume
    note = Note("decision", "соединяем с оператором", None if meter is None else meter.id)
    return [note, *kept, *preface, Say("transfer"), Transfer(ctx.policy.operator_number, True)]


def on_transfer_ended(
    state: CallState, ctx: Context, event: TransferEnded, next_meter: NextMeter
) -> list[Action]:
    """The operator answered (the call ends), or did not (the caller hears so and goes on)."""
    if state.step != "transfer":
        raise ValueError(f"a transfer result at step {state.step!r}")
    if event.status == "completed":
        state.step, state.outcome = "done", "transferred"
        return [Note("decision", "разговор с оператором завершён"), Hangup(), Finish("transferred")]
    resume, state.resume = state.resume, ""
    notes: list[Action] = [Note("decision", f"оператор не ответил ({event.status}) — продолжаем")]
    missed = [Say("operator_missed")]
    if resume == "end" or (resume == "next" and state.account is None):
        state.step, state.outcome = "done", "operator_unanswered"
        says = [*missed, Say("other_ways"), hours_say(ctx.policy), Say("goodbye")]
        return [*notes, *says, Hangup(), Finish("operator_unanswered")]
    if resume == "next":
        return notes + next_meter(state, ctx, missed)
    state.step, state.attempts, state.bad_input = resume, 0, False
    carry_on = [*missed, Say("carry_on")]
    return [*notes, gather_for(state, ctx.policy, carry_on, full=True)]
