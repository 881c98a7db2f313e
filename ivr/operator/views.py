"""Review views: the queue, a call's page, decisions on flags, recordings, the dashboard."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from ivr.operator import decisions
from ivr.operator.blueprint import bp
from ivr.operator.checks import Check, DecisionError
from ivr.operator.dashboard import dashboard
from ivr.operator.pages import audio_name, call_context, review_context
from ivr.operator.queue import link_args, queue_filter
from ivr.operator.web import db, me, now, retried, settings
from storage.models import Flag
from storage.review import review_queue, suppliers


@bp.get("/")
def queue() -> str:
    """Flags waiting for an operator, newest first."""
    cfg = settings()
    f = queue_filter(request.args, cfg.timezone, cfg.city_code)
    page = review_queue(db(), f)
    return render_template(
        "operator/queue.html",
        page=page,
        f=f,
        args=link_args(request.args),
        suppliers=suppliers(db()),
    )


@bp.get("/calls/<int:call_id>")
def call(call_id: int) -> str:
    """A call's timeline, its flags with decision forms, and the account's meters."""
    return _render_call(call_id)


def _render_call(call_id: int, checks: dict[int, Check] | None = None, status: int = 200) -> Any:
    context = call_context(db(), settings().audio_dir, call_id)
    if context is None:
        abort(404)
    return render_template("operator/review.html", checks=checks or {}, **context), status


@bp.get("/flags/<int:flag_id>")
def flag(flag_id: int) -> Any:
    """A flag: its call's page, or a page of its own when raised outside a call."""
    found = db().get(Flag, flag_id)
    if found is None:
        abort(404)
    if found.call_id is not None:
        return redirect(url_for(".call", call_id=found.call_id, _anchor=f"flag-{flag_id}"))
    return _render_flag(found)


def _render_flag(found: Flag, checks: dict[int, Check] | None = None) -> str:
    context = review_context(db(), settings().audio_dir, None, [found])
    return render_template("operator/review.html", checks=checks or {}, **context)


@bp.post("/flags/<int:flag_id>/decision")
def decide(flag_id: int) -> Any:
    """Accept, correct (check first, then save), reject or mark for a call back."""
    found = db().get(Flag, flag_id)
    if found is None:
        abort(404)
    call_id = found.call_id
    try:
        result = retried(
            lambda: decisions.decide(
                db(), settings(), flag_id, me().operator_id, request.form, now()
            )
        )
    except DecisionError as exc:
        db().rollback()
        flash(str(exc), "error")
        result = None
    if isinstance(result, Check):
        if call_id is None:
            return _render_flag(found, {flag_id: result})
        return _render_call(call_id, {flag_id: result})
    if isinstance(result, str):
        flash(result, "ok")
    if call_id is None:
        return redirect(url_for(".flag", flag_id=flag_id))
    return redirect(url_for(".call", call_id=call_id, _anchor=f"flag-{flag_id}"))


@bp.get("/audio/<path:name>")
def audio(name: str) -> Response:
    """A recording from the audio directory (nothing outside it)."""
    audio_dir = settings().audio_dir
    found = audio_name(audio_dir, name)
    if found is None or found != name:
        abort(404)
    response = send_file(audio_dir.resolve() / found, conditional=True)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/dashboard")
def dashboard_page() -> str:
    """Today and the current period at a glance."""
    cfg = settings()
    period, spans = dashboard(db(), now(), cfg.timezone, cfg.window)
    return render_template("operator/dashboard.html", period=period, spans=spans)
