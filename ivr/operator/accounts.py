"""Manual entry: find an account by number or phone, then enter readings for its meters."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ivr.operator.blueprint import bp
from ivr.operator.checks import Check, DecisionError
from ivr.operator.entry import enter_reading
from ivr.operator.pages import account_context
from ivr.operator.web import db, me, now, retried, settings
from ivr.phones import normalize
from storage.models import Account
from storage.review import find_accounts


@bp.get("/accounts")
def accounts() -> Any:
    """Search by account number or phone; one match opens its page."""
    q = (request.args.get("q") or "").strip()[:40]
    found = find_accounts(db(), q, normalize(q, settings().city_code)) if q else []
    if len(found) == 1:
        return redirect(url_for(".account", number=found[0].number))
    return render_template("operator/accounts.html", q=q, found=found)


def _account(number: str) -> Account:
    account = db().scalar(select(Account).where(Account.number == number))
    if account is None:
        abort(404)
    return account


@bp.get("/accounts/<number>")
def account(number: str) -> str:
    """An account's meters, their history, and a form per meter."""
    return render_template(
        "operator/account.html", checks={}, **account_context(db(), _account(number))
    )


@bp.post("/accounts/<number>/readings")
def enter(number: str) -> Any:
    """Check a typed reading, then save it on the second step."""
    found = _account(number)
    try:
        result = retried(
            lambda: enter_reading(db(), settings(), found, me().operator_id, request.form, now())
        )
    except DecisionError as exc:
        db().rollback()
        flash(str(exc), "error")
        return redirect(url_for(".account", number=number))
    if isinstance(result, Check):
        context = account_context(db(), found)
        checks = {int(request.form["meter_id"]): result}  # enter_reading found the meter
        return render_template("operator/account.html", checks=checks, **context)
    flash(result, "ok")
    return redirect(url_for(".account", number=number))
