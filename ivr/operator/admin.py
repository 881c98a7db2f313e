"""Admin pages: list operators, add one, deactivate one, reset a password."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from ivr.operator.blueprint import admin_bp
from ivr.operator.operators import (
    OperatorError,
    add_operator,
    deactivate,
    list_operators,
    reset_password,
)
from ivr.operator.web import db, me, now


@admin_bp.before_request
def require_admin() -> None:
    """Admin pages are for admins only."""
    if not me().is_admin:
        abort(403)


@admin_bp.get("/operators")
def operators() -> str:
    """Every operator with the actions an admin can take."""
    return render_template("operator/operators.html", operators=list_operators(db()), now_utc=now())


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
