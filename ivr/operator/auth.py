"""Sign-in and sign-out."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user

from ivr.operator.blueprint import bp
from ivr.operator.labels import local_time
from ivr.operator.operators import Locked, OperatorError, end_sessions, sign_in
from ivr.operator.web import SignedIn, db, me, now, settings


def _safe_next(target: str | None) -> str:
    """Only a path inside the operator view: no open redirect through ?next=."""
    if (
        target
        and target.startswith("/operator/")
        and "//" not in target
        and "\\" not in target
        and target.isprintable()  # CR/LF would split the Location header
    ):
        return target
    return url_for(".queue")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in_page() -> Any:
    """The sign-in form; repeated failures from one address slow that address down."""
    if request.method == "GET":
        return render_template("operator/sign_in.html", next=request.args.get("next", ""))
    login = request.form.get("login", "")[:64]
    try:
        operator = sign_in(
            db(), login, request.form.get("password", ""), now(), request.remote_addr or ""
        )
    except Locked as exc:
        until = local_time(exc.until, settings().timezone, "%H:%M")
        flash(f"Слишком много неудачных попыток. Повторите вход после {until}.", "error")
        return render_template("operator/sign_in.html", login=login), 429
    except OperatorError as exc:
        flash(str(exc), "error")
        return render_template("operator/sign_in.html", login=login), 401
    login_user(SignedIn(operator, settings().secret_key))
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/sign-out")
def sign_out() -> Any:
    """End the session, and every copy of its cookie (and the operator's other sessions)."""
    end_sessions(db(), me().operator_id, None, now())
    logout_user()
    flash("Вы вышли.", "ok")
    return redirect(url_for(".sign_in_page"))
