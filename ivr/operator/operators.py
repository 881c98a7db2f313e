"""Operators: passwords (argon2), sign-in with lock-out, and what an admin may change."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.models import Operator
from storage.review import write_audit

MAX_FAILED = 5
LOCK_FOR = timedelta(minutes=15)
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


def sign_in(session: Session, login: str, password: str, now: datetime) -> Operator:
    """The operator for these credentials (commits the failure count); raises OperatorError."""
    operator = session.scalar(select(Operator).where(Operator.login == login.strip()))
    if operator is None or not operator.active:
        _verify(_dummy_hash(), password)
        raise OperatorError("Неверный логин или пароль")
    if operator.locked_until is not None and operator.locked_until > now:
        raise Locked(operator.locked_until)
    if not _verify(operator.password_hash, password):
        _count_failure(session, operator, now)
        if operator.locked_until is not None and operator.locked_until > now:
            raise Locked(operator.locked_until)
        raise OperatorError("Неверный логин или пароль")
    if _hasher.check_needs_rehash(operator.password_hash):
        operator.password_hash = _hasher.hash(password)
    operator.failed_logins = 0
    operator.locked_until = None
    session.commit()
    return operator


def _count_failure(session: Session, operator: Operator, now: datetime) -> None:
    """One more failure, counted in the database so parallel attempts all count."""
    if operator.locked_until is not None:
        # The previous lock is over: count afresh.
        session.execute(
            update(Operator)
            .where(Operator.id == operator.id)
            .values(failed_logins=0, locked_until=None)
        )
    session.execute(
        update(Operator)
        .where(Operator.id == operator.id)
        .values(failed_logins=Operator.failed_logins + 1)
    )
    session.refresh(operator)
    if operator.failed_logins >= MAX_FAILED:
        operator.locked_until = now + LOCK_FOR
        operator.failed_logins = 0
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
    operator.failed_logins = 0
    operator.locked_until = None
    write_audit(session, by, "password_reset", now, after={"login": operator.login})
    session.commit()
    return operator
