"""`ensign cohort-key`: an environment's cohort-sync keys, from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from ensign.cli.base import unit_of_work

cohort_key_app = typer.Typer(
    help="Cohort-sync keys: the password Mixpanel (or any tool) sends to sync cohorts.",
    no_args_is_help=True,
)

Environment = Annotated[str, typer.Option(help="The environment's client key.")]


@cohort_key_app.command("create")
def create(
    environment: Environment,
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
) -> None:
    """Create a cohort-sync key and print it (it is shown only once)."""
    from ensign.services import cohorts

    with unit_of_work() as unit:
        _, secret = cohorts.create_key(unit, None, environment, name)
    typer.echo(secret)


@cohort_key_app.command("list")
def list_(environment: Environment) -> None:
    """List an environment's cohort-sync keys (never the secrets)."""
    from ensign.services import cohorts

    with unit_of_work(read_only=True) as unit:
        rows = [
            (k.id, k.prefix, "active" if k.active else "revoked", k.name)
            for k in cohorts.list_keys(unit, None, environment)
        ]
    for key_id, prefix, status, name in rows:
        typer.echo(f"{key_id}\t{prefix}…\t{status}\t{name}")


@cohort_key_app.command("revoke")
def revoke(
    environment: Environment,
    key_id: Annotated[int, typer.Argument(help="The key's id, as `list` shows it.")],
) -> None:
    """Revoke a cohort-sync key: syncs using it get 401 from now on."""
    from ensign.services import cohorts

    with unit_of_work() as unit:
        name = cohorts.revoke_key(unit, None, environment, key_id).name
    typer.echo(f"Revoked cohort-sync key {key_id} ({name}).")
