"""`meterline operators …`: add operators and reset passwords from the command line."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from ivr.commands.schema import needs_schema
from ivr.operator.operators import (
    OperatorError,
    add_operator,
    list_operators,
    reset_password,
    unlock,
)
from ivr.services import services
from storage.models import Operator


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@click.group("operators")
def operators_group() -> None:
    """Operators of the review view."""


@operators_group.command("add")
@click.argument("login")
@click.option("--admin", is_flag=True, help="May manage other operators.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (scripts).")
@with_appcontext
@needs_schema
def add_command(login: str, admin: bool, password_stdin: bool) -> None:
    """Add an operator; the password is asked twice, hidden."""
    with services().sessions() as session:
        try:
            add_operator(session, login, _password(password_stdin), admin, None, services().clock())
        except OperatorError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"operator {login} added" + (" (admin)" if admin else ""))


@operators_group.command("password")
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (scripts).")
@with_appcontext
@needs_schema
def password_command(login: str, password_stdin: bool) -> None:
    """Set a new password (also unlocks a locked-out operator)."""
    with services().sessions() as session:
        operator = session.scalar(select(Operator).where(Operator.login == login))
        if operator is None:
            raise click.ClickException(f"no operator {login}")
        try:
            reset_password(
                session, operator.id, _password(password_stdin), None, services().clock()
            )
        except OperatorError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"password of {login} changed")


@operators_group.command("unlock")
@click.argument("login")
@with_appcontext
@needs_schema
def unlock_command(login: str) -> None:
    """Lift the sign-in blocks on a login, from every address."""
    with services().sessions() as session:
        lifted = unlock(session, login, None, services().clock())
    click.echo(f"{login}: {lifted} sign-in block(s) lifted")


@operators_group.command("list")
@with_appcontext
@needs_schema
def list_command() -> None:
    """Every operator, with role and state."""
    with services().sessions() as session:
        for op in list_operators(session):
            role = "admin" if op.is_admin else "operator"
            state = "active" if op.active else "inactive"
            click.echo(f"{op.login}\t{role}\t{state}")
