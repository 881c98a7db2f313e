"""Admin pages: list operators, add one, deactivate one, reset a password, unlock, sign out."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from ivr.operator.blueprint import admin_bp
from ivr.operator.operators import (
    OperatorError,
    add_operator,
    blocked_logins,
    deactivate,
    end_sessions,
    list_operators,
    login_key,
    reset_password,
    unlock,
)
from ivr.operator.web import db, me, now
from storage.models import Operator


@admin_bp.before_request
def require_admin() -> None:
    """Admin pages are for admins only."""
    if not me().is_admin:
        abort(403)


@admin_bp.get("/operators")
def operators() -> str:
    """Every operator with the actions an admin can take."""
    operators = list_operators(db())
    blocks = blocked_logins(db(), now())
    blocked = {
        op.id: blocks[login_key(op.login)] for op in operators if login_key(op.login) in blocks
    }
    return render_template(
        "operator/operators.html", operators=operators, now_utc=now(), blocked=blocked
    )


@admin_bp.post("/operators")
def add() -> Any:
    """Add an operator."""
    form = request.form
    if form.get("password", "") != form.get("password2", ""):
        flash("Пароли не совпадают", "error")
        return redirect(url_for(".operators"))
    try:
        op = add_operator(
            db(),
            form.get("login", ""),
            form.get("password", ""),
            form.get("is_admin") == "1",
            me().operator_id,
            now(),
        )
        flash(f"Оператор {op.login} добавлен", "ok")
    except OperatorError as exc:
        db().rollback()
        flash(str(exc), "error")
    return redirect(url_for(".operators"))


@admin_bp.post("/operators/<int:operator_id>/deactivate")
def deactivate_operator(operator_id: int) -> Any:
    """Switch an operator off."""
    try:
        op = deactivate(db(), operator_id, me().operator_id, now())
        flash(f"Оператор {op.login} отключён", "ok")
    except OperatorError as exc:
        flash(str(exc), "error")
    return redirect(url_for(".operators"))


@admin_bp.post("/operators/<int:operator_id>/password")
def password(operator_id: int) -> Any:
    """Set a new password for an operator."""
    try:
        op = reset_password(
            db(), operator_id, request.form.get("password", ""), me().operator_id, now()
        )
        flash(f"Пароль оператора {op.login} изменён", "ok")
    except OperatorError as exc:
        db().rollback()
        flash(str(exc), "error")
    return redirect(url_for(".operators"))


@admin_bp.post("/operators/<int:operator_id>/unlock")
def unlock_operator(operator_id: int) -> Any:
    """Lift the sign-in blocks on an operator's login, from every address."""
    op = db().get(Operator, operator_id)
    if op is None:
        abort(404)
    unlock(db(), op.login, me().operator_id, now())
    flash(f"Вход оператора {op.login} разблокирован", "ok")
    return redirect(url_for(".operators"))


@admin_bp.post("/operators/<int:operator_id>/sign-out")
def sign_out_operator(operator_id: int) -> Any:
    """End every open session of an operator."""
    op = db().get(Operator, operator_id)
    if op is None:
        abort(404)
    end_sessions(db(), op.id, me().operator_id, now())
    flash(f"Все сеансы оператора {op.login} завершены", "ok")
    return redirect(url_for(".operators"))
