"""`ensign user`: dashboard users, made from the command line (the first admin especially)."""

from __future__ import annotations

from typing import Annotated

import typer

from ensign.cli.base import unit_of_work

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

    with unit_of_work() as session:
        organisation_id = organisation or default_organisation(session).id
        user = create_user(session, email=email, password=password, organisation_id=organisation_id)
        typer.echo(f"Created user {user.email} in organisation {organisation_id}.")
