"""The start of a call: greeting, the submission window, and who is calling."""

from __future__ import annotations

from callflows import escalation
from callflows.context import Context
from callflows.intake import in_window
from callflows.meters import start_meters
from callflows.model import (
    AccountInfo,
    Action,
    CallStarted,
    Finish,
    FlagReason,
    Hangup,
    Note,
    RaiseFlag,
    Say,
    SetAccount,
)
from callflows.prompts import MAX_CHOICES, gather_for, hours_say, street_of, window_say
from callflows.state import CallState
from callflows.verify import matches, second_fact


def on_call_started(event: CallStarted, ctx: Context) -> tuple[CallState, list[Action]]:
    """Greet, apply the window policy, and identify the caller by caller ID if possible."""
    policy = ctx.policy
    today = ctx.local.date()
    # The call's readings count for the period it was let in for, decided here once (a call
    # that confirms after midnight on the window's last day still gives that month's readings).
    state = CallState(caller=event.caller, period=ctx.directory.period_of(event.now))
    says = [Say("greeting")]
    actions: list[Action] = []
    if not in_window(today, policy.window_days):
        if policy.outside_window == "refuse":
            state.step, state.outcome = "done", "outside_window"
            closing = [window_say("outside_window", policy), hours_say(policy), Say("goodbye")]
            return state, [*says, *closing, Hangup(), Finish("outside_window")]
        state.outside_window = True
        says.append(window_say("outside_window_flag", policy))
        actions.append(
            Note("decision", f"вне дней приёма ({today:%d.%m.%Y}): показания на проверку")
        )
    # 0 is offered only when it reaches someone now.
    says.append(Say("help_keys" if ctx.operator_reachable else "help_keys_no_operator"))
    accounts = ctx.directory.accounts_for_phone(event.caller, state.period) if event.caller else []
    return state, actions + _identify(state, ctx, accounts, says)


def _identify(
    state: CallState, ctx: Context, accounts: list[AccountInfo], says: list[Say]
) -> list[Action]:
    caller = state.caller or "скрыт"
    if len(accounts) == 1:
        note = Note("decision", f"номер {caller}: счёт {accounts[0].number}")
        return [note, *choose(state, ctx, accounts[0], says)]
    if 1 < len(accounts) <= MAX_CHOICES:
        state.step, state.candidates = "choose_account", list(accounts)
        numbers = ", ".join(a.number for a in accounts)
        note = Note("decision", f"номер {caller}: несколько счетов ({numbers}) — выбор")
        return [note, gather_for(state, ctx.policy, says, full=True)]
    state.step = "account_number"
    if accounts:
        says.append(Say("too_many_accounts"))
    else:
        says.append(Say("caller_unknown" if state.caller else "caller_hidden"))
    note = Note("decision", f"номер {caller}: счетов {len(accounts)} — спрашиваем номер счёта")
    return [note, gather_for(state, ctx.policy, says, full=True)]


def choose(state: CallState, ctx: Context, account: AccountInfo, says: list[Say]) -> list[Action]:
    """The caller is this account: keep its snapshot and start on its meters."""
    state.account, state.candidates = account, []
    return [SetAccount(account.id), *start_meters(state, ctx, says)]


def on_choice(state: CallState, ctx: Context, digits: str) -> list[Action]:
    """A key pressed to pick one of several accounts."""
    if digits.isdigit() and 1 <= int(digits) <= len(state.candidates):
        account = state.candidates[int(digits) - 1]
        note = Note("decision", f"выбран счёт {account.number}")
        return [note, *choose(state, ctx, account, [])]
    return retry(state, ctx, [Say("not_understood")], bad=True)


def on_account_number(state: CallState, ctx: Context, digits: str) -> list[Action]:
    """An account number keyed by a caller the line does not know.

    Each attempt counts against an hourly limit shared by all callers (given back once the
    caller confirms the second fact), on top of `max_attempts` per call: guessing account
    numbers over many calls, or many numbers, runs out.
    """
    if not digits.isdigit():
        return retry(state, ctx, [Say("not_understood")], bad=True)
    if not ctx.directory.reserve_guess(ctx.now):
        return guesses_exhausted(state, ctx)
    account = ctx.directory.account_by_number(digits, state.period)
    if account is None:
        note = Note("decision", f"счёт {digits} не найден")
        return [note, *retry(state, ctx, [Say("account_not_found")], bad=True)]
    fact = second_fact(account)
    if fact is None:
        note = Note("decision", f"счёт {account.number}: в адресе нет номера квартиры или дома")
        return [note, *give_up(state, ctx)]
    state.step, state.candidates = "second_fact", [account]
    note = Note("decision", f"счёт {account.number} есть: спрашиваем номер {fact.words}")
    return [note, gather_for(state, ctx.policy, [Say("account_exists")], full=True)]


def on_second_fact(state: CallState, ctx: Context, digits: str) -> list[Action]:
    """The flat (or house) number of the account found by its number: only then is the
    street named, and the previous readings read out; its readings still go to review."""
    account = state.candidates[0]
    fact = second_fact(account)
    assert fact is not None  # asked only when there is one
    if not digits.isdigit():
        return retry(state, ctx, [Say("not_understood")], bad=True)
    if not matches(fact, digits):
        state.step, state.candidates = "account_number", []
        note = Note("decision", f"счёт {account.number}: номер {fact.words} не совпал")
        return [note, *retry(state, ctx, [Say("second_fact_wrong")], bad=True)]
    ctx.directory.release_guess(ctx.now)
    state.by_number = True
    note = Note("decision", f"счёт {account.number}: номер {fact.words} подтверждён")
    found = Say("account_found", {"street": street_of(account.address) or account.number})
    return [note, *choose(state, ctx, account, [found])]


def guesses_exhausted(state: CallState, ctx: Context) -> list[Action]:
    """Too many account numbers tried this hour, by all callers: an operator, or goodbye."""
    caller = state.caller or "номер скрыт"
    detail = f"{caller}: попытки ввода лицевого счёта за час исчерпаны"
    return _end(state, ctx, [RaiseFlag("rate_limited", detail)], "rate_limited",
                Say("account_guesses_exhausted"))  # fmt: skip


def retry(state: CallState, ctx: Context, preface: list[Say], bad: bool) -> list[Action]:
    """Ask again (with a hint the second time), or end the call when it failed too often."""
    return escalation.failed(state, ctx, preface, bad, give_up)


def give_up(state: CallState, ctx: Context) -> list[Action]:
    """Identification failed: flag it, and hand over to an operator or say goodbye."""
    caller = state.caller or "номер скрыт"
    reason: FlagReason = "unknown_caller"
    if state.step == "choose_account":
        reason = "caller_error" if state.bad_input else "no_input"
        detail = f"{caller}: счёт не выбран из {len(state.candidates)}"
    elif state.step == "second_fact":
        detail = f"{caller}: номер квартиры или дома не подтверждён, попыток: {state.attempts}"
    else:
        detail = f"{caller}: лицевой счёт не найден, попыток: {state.attempts}"
    return _end(state, ctx, [RaiseFlag(reason, detail)], reason, Say("identify_failed"))


def _end(
    state: CallState, ctx: Context, actions: list[Action], reason: FlagReason, say: Say
) -> list[Action]:
    """Say `say`, then an operator if one answers now, else the hours and goodbye."""
    if ctx.operator_reachable:
        state.outcome = reason
        return actions + escalation.transfer(state, ctx, "end", [say])
    state.step, state.outcome = "done", reason
    actions.append(say)
    if ctx.policy.operator_number is not None:
        actions.append(hours_say(ctx.policy))
    return [*actions, Say("goodbye"), Hangup(), Finish(reason)]
