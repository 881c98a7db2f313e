"""Per-request plumbing of the operator view: the database session and the signed-in operator."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from flask import abort, g
from flask_login import UserMixin, current_user
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ivr.config import Settings
from ivr.services import services
from storage.ledger_retry import retrying
from storage.models import Operator

T = TypeVar("T")


class SignedIn(UserMixin):
    """The operator behind a request; the id changes when the password does."""

    def __init__(self, operator: Operator, secret: str) -> None:
        self.operator_id = operator.id
        self.login = operator.login
        self.is_admin = bool(operator.is_admin)
        self._token = f"{operator.id}:{session_tag(operator, secret)}"

    def get_id(self) -> str:
        """The value kept in the session cookie."""
        return self._token


def session_tag(operator: Operator, secret: str) -> str:
    """A tag bound to the password hash and the session version, kept in the database.

    So a new password, a sign-out or an admin ends every open session: a cookie copied
    before any of them no longer loads an operator.
    """
    bound = f"{operator.password_hash}|{operator.session_version or 0}"
    mac = hmac.new(secret.encode(), bound.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def load_operator(token: str) -> SignedIn | None:
    """Flask-Login's user loader: an active operator whose password has not changed."""
    op_id, _, tag = token.partition(":")
    number = whole_number(op_id)
    if number is None:
        return None
    operator = db().get(Operator, number)
    secret = settings().secret_key
    if operator is None or not operator.active:
        return None
    if not hmac.compare_digest(tag, session_tag(operator, secret)):
        return None
    return SignedIn(operator, secret)


def whole_number(raw: str | None, digits: int = 9) -> int | None:
    """An ASCII whole number of at most `digits` digits, else None.

    Not `str.isdigit`: it accepts "²" and other digits `int()` refuses.

    >>> whole_number("12"), whole_number("²"), whole_number("1" * 20)
    (12, None, None)
    """
    if raw is None or not 0 < len(raw) <= digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


def db() -> Session:
    """The request's session, opened on first use and closed when the request ends."""
    if "operator_db" not in g:
        g.operator_db = services().sessions()
    session: Session = g.operator_db
    return session


def close_db(_exc: BaseException | None = None) -> None:
    """Close the request's session; anything not committed is rolled back."""
    # Every request's app context ends here, a webhook's too: `g` itself, not its proxy
    # (see ivr.request.current_request).
    session: Session | None = g._get_current_object().pop("operator_db", None)
    if session is not None:
        session.close()


def retried(work: Callable[[], T]) -> T:
    """Run an operator's decision again, from a fresh transaction, when the database reports
    a conflict (deadlock, serialization failure, a busy SQLite): invisible to the operator."""

    def attempt() -> T:
        try:
            return work()
        except DBAPIError:
            db().rollback()
            raise

    return retrying(attempt)


def settings() -> Settings:
    """The app's settings."""
    return services().settings


def now() -> datetime:
    """The app's clock (tests replace it)."""
    return services().clock()


def me() -> SignedIn:
    """The signed-in operator (every operator page requires one)."""
    user = current_user._get_current_object()
    if not isinstance(user, SignedIn):
        abort(401)
    return user
