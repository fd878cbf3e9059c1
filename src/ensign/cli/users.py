"""`ensign user`: dashboard users, made from the command line (the first admin especially)."""

from __future__ import annotations

from typing import Annotated

import typer

from ensign.cli.base import fail, unit_of_work
from ensign.errors import EnsignError

user_app = typer.Typer(help="Dashboard users.", no_args_is_help=True)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="The user's email; they sign in with it.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters."
        ),
    ],
    organisation: Annotated[
        int | None, typer.Option(help="Organisation id (default: the first, made if none).")
    ] = None,
) -> None:
    """Create a dashboard user who can manage everything in an organisation."""
    from ensign.services.accounts import create_user
    from ensign.services.organisations import default_organisation

    with unit_of_work() as unit:
        organisation_id = organisation or default_organisation(unit.session).id
        user = create_user(
            unit.session, email=email, password=password, organisation_id=organisation_id
        )
        typer.echo(f"Created user {user.email} in organisation {organisation_id}.")


@user_app.command("set-password")
def user_set_password(
    email: Annotated[str, typer.Option(help="The user's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters."
        ),
    ],
) -> None:
    """Give a user a new password; it signs them out everywhere."""
    from ensign.services.accounts import hash_password, set_password

    try:
        password_hash = hash_password(password)  # slow: before the transaction opens
    except EnsignError as error:
        fail(error.detail)
    with unit_of_work() as unit:
        user = set_password(unit.session, email=email, password_hash=password_hash)
        typer.echo(f"Changed the password of {user.email}; their sessions have ended.")


@user_app.command("remove")
def user_remove(email: Annotated[str, typer.Option(help="The user's email.")]) -> None:
    """Remove a user; they are signed out at once."""
    from ensign.services.accounts import remove_user

    with unit_of_work() as unit:
        user = remove_user(unit.session, email=email)
        typer.echo(f"Removed {user.email}; they are signed out.")
