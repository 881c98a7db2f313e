"""The operator review view: sign-in, the review queue, call pages, decisions, dashboard."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template, request, send_from_directory
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from ivr.operator import labels
from ivr.operator.blueprint import bp
from ivr.operator.queue import shown_day
from ivr.operator.web import close_db, load_operator, settings
from ivr.phones import mask

PUBLIC_ENDPOINTS = {"operator.sign_in_page", "operator.static"}

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "operator.sign_in_page"
login_manager.login_message = "Войдите, чтобы продолжить."
login_manager.login_message_category = "info"  # a request, not a fault
login_manager.user_loader(load_operator)


@bp.before_request
def guard() -> Any:
    """Every page but sign-in needs an operator; every form needs its CSRF token."""
    if request.endpoint not in PUBLIC_ENDPOINTS and not current_user.is_authenticated:
        return login_manager.unauthorized()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    return None


@bp.after_request
def headers(response: Response) -> Response:
    """Personal data: no caching by proxies, no framing, a strict content policy."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    )
    return response


@bp.errorhandler(CSRFError)
def csrf_failed(exc: CSRFError) -> tuple[str, int]:
    """A form without a valid token: say so in Russian."""
    return render_template(
        "operator/error.html", message="Форма устарела: обновите страницу и повторите."
    ), 400


# Werkzeug's own pages for these are in English; an operator reads Russian.
ERROR_MESSAGES = {
    403: "Эта страница только для администраторов.",
    404: "Такой записи нет: возможно, ссылка устарела или в ней ошибка.",
}


def _error_page(exc: HTTPException) -> tuple[str, int]:
    code = exc.code or 500
    return render_template("operator/error.html", message=ERROR_MESSAGES[code]), code


for _code in ERROR_MESSAGES:
    bp.register_error_handler(_code, _error_page)


@bp.app_template_global("t")
def local(moment: Any, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """A UTC moment in the utility's time zone."""
    return labels.local_time(moment, settings().timezone, fmt)


def favicon() -> Response:
    """The icon browsers ask for at the root (an SVG; every current browser takes one)."""
    return send_from_directory(
        bp.static_folder or "", "favicon.svg", mimetype="image/svg+xml", max_age=86400
    )


def register(app: Flask) -> None:
    """Attach the operator blueprint and its extensions."""
    cfg = app.config["METERLINE_SETTINGS"]
    app.config.setdefault("WTF_CSRF_ENABLED", True)
    # Only the operator view has forms; Twilio's webhooks carry a signature, not a token.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config["WTF_CSRF_TIME_LIMIT"] = 12 * 3600
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = cfg.public_url.startswith("https://")
    app.config["REMEMBER_COOKIE_HTTPONLY"] = True
    app.config["REMEMBER_COOKIE_SECURE"] = app.config["SESSION_COOKIE_SECURE"]
    csrf.init_app(app)
    if "voice" in app.blueprints:
        csrf.exempt(app.blueprints["voice"])
    login_manager.init_app(app)
    app.teardown_appcontext(close_db)
    from ivr.operator import accounts, admin, auth, views  # noqa: F401  (routes)

    app.register_blueprint(bp)
    # Flask-Login refreshes its remember-me cookie after every request of the app. Only the
    # operator pages sign anyone in, so it runs after theirs alone: Twilio's webhooks, which
    # never carry a session, skip it.
    app.after_request_funcs[None].remove(login_manager._update_remember_cookie)
    app.after_request_funcs.setdefault(bp.name, []).append(login_manager._update_remember_cookie)
    from ivr import storage_check

    storage_check.init_app(app)
    app.jinja_env.filters["num"] = labels.num
    app.jinja_env.filters["prose"] = labels.prose
    app.jinja_env.filters["ru_period"] = labels.period_words
    app.jinja_env.filters["ru_date"] = shown_day
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    app.jinja_env.filters["mask"] = mask
    app.jinja_env.filters["audit"] = labels.audit_summary
    app.jinja_env.globals["L"] = labels
