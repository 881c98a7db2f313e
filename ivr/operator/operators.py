"""Operators: passwords (argon2), sign-in with throttling, and what an admin may change."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage import counters
from storage.models import Operator
from storage.review import write_audit

# Sign-in throttling (storage/counters.py): the 5th failure within an hour for one login
# from one address blocks that pair for a minute, each further failure twice as long, up to
# 15 minutes; 20 failures from one address, whatever the logins, block the address likewise.
MAX_FAILED = 5
MAX_FAILED_PER_ADDRESS = 20
FAILURE_WINDOW = timedelta(hours=1)
FIRST_BLOCK = timedelta(minutes=1)
LONGEST_BLOCK = timedelta(minutes=15)
SIGN_IN_KEY = "sign-in:"
ADDRESS_KEY = "sign-in-address:"
MIN_PASSWORD = 8

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the login is unknown, so both cases take the same time.
    Computed on first use: an argon2 hash costs 64 MiB and a tenth of a second."""
    return _hasher.hash("not-a-password-of-anyone")


class OperatorError(ValueError):
    """A request about operators that cannot be done; the message is for the screen."""


class Locked(OperatorError):
    """Too many failed sign-ins: refused until `until`."""

    def __init__(self, until: datetime) -> None:
        super().__init__("Вход временно заблокирован")
        self.until = until


def hash_password(password: str) -> str:
    """An argon2id hash of a password that is long enough."""
    if len(password) < MIN_PASSWORD:
        raise OperatorError(f"Пароль должен быть не короче {MIN_PASSWORD} символов")
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def add_operator(
    session: Session, login: str, password: str, is_admin: bool, by: int | None, now: datetime
) -> Operator:
    """Create an operator (commits); the login must be new."""
    login = login.strip()
    if not login or len(login) > 64 or any(c.isspace() for c in login):
        raise OperatorError("Логин: от 1 до 64 символов, без пробелов")
    if session.scalar(select(Operator.id).where(Operator.login == login)) is not None:
        raise OperatorError(f"Оператор {login} уже есть")
    operator = Operator(login=login, password_hash=hash_password(password), is_admin=is_admin)
    session.add(operator)
    session.flush()
    write_audit(session, by, "operator_add", now, after={"login": login, "admin": is_admin})
    session.commit()
    return operator


def throttle_key(login: str, address: str) -> str:
    """The counter of failed sign-ins for a login (as typed, normalised) from one address."""
    return f"{SIGN_IN_KEY}{login_key(login)}|{address}"


def login_key(login: str) -> str:
    """A login as the throttle counts it: normalised, trimmed, case-folded."""
    # Only for counting: " oper2", "OPER2" and "oper2\t" are one login to the throttle, but
    # none of them signs in as oper2 (see `sign_in`).
    return unicodedata.normalize("NFKC", login).strip().casefold()[:64]


def sign_in(
    session: Session, login: str, password: str, now: datetime, address: str = ""
) -> Operator:
    """The operator for these credentials (commits the failure count); raises OperatorError.

    Failures are counted per login and client address, and per address: an outsider can
    slow down only their own attempts, never a real operator signing in from elsewhere.
    Every failure reads the same, whether the login exists or not.
    """
    keys = [throttle_key(login, address), f"{ADDRESS_KEY}{address}"]
    until = counters.blocked_until(session, keys, now)
    if until is not None:
        raise Locked(until)
    # Exact match: logins never hold spaces or control characters (`add_operator`).
    operator = session.scalar(select(Operator).where(Operator.login == login))
    if operator is None or not operator.active:
        _verify(_dummy_hash(), password)  # the same time as a wrong password
        operator = None
    if operator is None or not _verify(operator.password_hash, password):
        _count_failure(session, keys, now)
        raise OperatorError("Неверный логин или пароль")
    if _hasher.check_needs_rehash(operator.password_hash):
        operator.password_hash = _hasher.hash(password)
    counters.clear(session, keys[:1])
    session.commit()
    return operator


def _count_failure(session: Session, keys: list[str], now: datetime) -> None:
    """One more failure on each key, counted in the database so parallel attempts all count."""
    ends = [
        counters.add_failure(session, key, now, FAILURE_WINDOW, free, FIRST_BLOCK, LONGEST_BLOCK)
        for key, free in zip(keys, (MAX_FAILED, MAX_FAILED_PER_ADDRESS), strict=True)
    ]
    session.commit()
    until = max((e for e in ends if e is not None), default=None)
    if until is not None:
        raise Locked(until)


def unlock(session: Session, login: str, by: int | None, now: datetime) -> int:
    """Lift every sign-in block on a login, from every address (commits); how many."""
    lifted = counters.clear(session, prefix=f"{SIGN_IN_KEY}{login_key(login)}|")
    write_audit(session, by, "operator_unlock", now, after={"login": login, "blocks": lifted})
    session.commit()
    return lifted


def blocked_logins(session: Session, now: datetime) -> dict[str, datetime]:
    """Logins (normalised) with a sign-in block running from some address, and its end."""
    found: dict[str, datetime] = {}
    for key, until in counters.blocked(session, SIGN_IN_KEY, now).items():
        login = key.removeprefix(SIGN_IN_KEY).rpartition("|")[0]
        found[login] = max(until, found.get(login, until))
    return found


def end_sessions(session: Session, operator_id: int, by: int | None, now: datetime) -> None:
    """End every open session of an operator (sign-out, or an admin's decision); commits."""
    session.execute(
        update(Operator)
        .where(Operator.id == operator_id)
        .values(session_version=Operator.session_version + 1)
    )
    if by is not None and by != operator_id:
        write_audit(session, by, "operator_sign_out", now, after={"operator_id": operator_id})
    session.commit()


def list_operators(session: Session) -> list[Operator]:
    """Every operator, active first."""
    stmt = select(Operator).order_by(Operator.active.desc(), Operator.login)
    return list(session.scalars(stmt))


def deactivate(session: Session, operator_id: int, by: int, now: datetime) -> Operator:
    """Switch an operator off (never deleted: the audit log points at them)."""
    operator = session.get(Operator, operator_id)
    if operator is None:
        raise OperatorError("Нет такого оператора")
    if operator.id == by:
        raise OperatorError("Нельзя отключить самого себя")
    operator.active = False
    write_audit(session, by, "operator_deactivate", now, after={"login": operator.login})
    session.commit()
    return operator


def reset_password(
    session: Session, operator_id: int, password: str, by: int | None, now: datetime
) -> Operator:
    """Set a new password, unlock, and so end the operator's open sessions."""
    operator = session.get(Operator, operator_id)
    if operator is None:
        raise OperatorError("Нет такого оператора")
    operator.password_hash = hash_password(password)
    operator.session_version = (operator.session_version or 0) + 1
    counters.clear(session, prefix=f"{SIGN_IN_KEY}{login_key(operator.login)}|")
    write_audit(session, by, "password_reset", now, after={"login": operator.login})
    session.commit()
    return operator
