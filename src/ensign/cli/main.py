"""The `ensign` command. Every command that touches the database migrates it first."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from ensign.cli.base import fail, open_database, unit_of_work
from ensign.cli.cohort_keys import cohort_key_app
from ensign.cli.serve_port import port_problem
from ensign.cli.users import user_app
from ensign.errors import EnsignError
from ensign.settings import Settings
from ensign.storage.db import Database, migrate

app = typer.Typer(
    help="Ensign: feature flags compatible with the Flagsmith SDKs.", no_args_is_help=True
)
api_key_app = typer.Typer(help="Admin API keys.", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")
app.add_typer(user_app, name="user")
app.add_typer(cohort_key_app, name="cohort-key")


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database to the latest schema."""
    settings = Settings()
    migrate(settings.database_url)
    typer.echo("Database is up to date.")


@api_key_app.command("create")
def api_key_create(
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    organisation: Annotated[
        int | None, typer.Option(help="Organisation id (default: the first).")
    ] = None,
) -> None:
    """Create an organisation admin API key and print it (it is shown only once)."""
    from ensign.services.keys import create_admin_key
    from ensign.services.organisations import default_organisation, organisation_exists

    with unit_of_work() as unit:
        if organisation is None:
            organisation_id = default_organisation(unit.session).id
        elif not organisation_exists(unit.session, organisation):
            fail(f"no organisation with id {organisation}")
        else:
            organisation_id = organisation
        key = create_admin_key(unit, organisation_id, name)
    typer.echo(key)


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A Flagsmith environment document (JSON).")],
    project: Annotated[str | None, typer.Option(help="Name of the project to create.")] = None,
    organisation: Annotated[
        int | None, typer.Option(help="Organisation id (default: the first).")
    ] = None,
) -> None:
    """Import a Flagsmith environment document as a new project and environment."""
    from ensign.services.import_checks import DocumentLimits
    from ensign.services.importing import import_actor, import_document_in_batches
    from ensign.services.organisations import default_organisation
    from ensign.storage.unit_of_work import Units

    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        fail(f"cannot read {file}: {error}")
    settings, db = open_database()
    try:
        with db.session() as session:
            organisation_id = organisation or default_organisation(session).id
        # Many short transactions, so `ensign serve` keeps serving live traffic meanwhile.
        result = import_document_in_batches(
            Units(db),
            import_actor(organisation_id, "system"),
            document,
            project_name=project,
            limits=DocumentLimits.from_settings(settings),
        )
    except EnsignError as error:
        fail(error.detail)
    finally:
        db.dispose()
    typer.echo(json.dumps(result.as_json()))


def _seed_demo(db: Database) -> bool:
    """Seed the demo when the database has no project; print how to use it either way."""
    from ensign.services.demo import DEMO_EMAIL, seed_demo
    from ensign.services.organisations import is_empty
    from ensign.storage import environments as environment_store
    from ensign.storage import users as user_store
    from ensign.storage.unit_of_work import Units

    settings = Settings()
    base = f"http://{settings.host}:{settings.port}"
    with Units(db).write() as unit:
        session = unit.session
        if is_empty(session):
            keys = seed_demo(unit)
            typer.echo("Seeded a demo project.")
            typer.echo(f"  Admin API key (shown once): {keys.admin_key}")
            typer.echo(f"  Dashboard: {base}/")
            typer.echo(f"  Sign in:   {keys.user_email} / {keys.user_password}")
            client_key, server_key = keys.client_key, keys.server_key
            created = True
        else:
            env = environment_store.first_environment(session)
            if env is None:
                return False
            client_key = env.api_key
            server_key = (
                user_store.first_server_key(session, env.id)
                or "(none: create one with the admin API)"
            )
            created = False
            typer.echo(f"  Dashboard: {base}/")
            if user_store.user_by_email(session, DEMO_EMAIL) is not None:
                # Its password was printed once, when the demo was seeded.
                typer.echo(
                    f"  Sign in:   {DEMO_EMAIL} with the password printed when the demo was "
                    f"seeded (a new one: scripts/ensign user set-password --email {DEMO_EMAIL})"
                )
            else:
                typer.echo("  Add a user with: scripts/ensign user create --email …")
    typer.echo(f"  Environment (client) key: {client_key}")
    typer.echo(f"  Server key:               {server_key}")
    typer.echo(f"  API:   {base}/api/v1/   docs: {base}/docs")
    typer.echo(
        f"  Try:   curl '{base}/api/v1/identities/?identifier=development_user_123456' "
        f"-H 'x-environment-key: {client_key}'"
    )
    return created


@app.command("demo")
def demo_command() -> None:
    """Seed a demo project into an empty database and print its keys."""
    _, db = open_database()
    if not _seed_demo(db):
        typer.echo("The database already has projects; nothing seeded.")


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default ENSIGN_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ENSIGN_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed a demo project if the database is empty.")
    ] = False,
) -> None:
    """Migrate the database if needed and serve the API."""
    import os

    from ensign import server

    if host is not None:
        os.environ["ENSIGN_HOST"] = host
    if port is not None:
        os.environ["ENSIGN_PORT"] = str(port)
    target = Settings()
    if (problem := port_problem(target.host, target.port)) is not None:
        fail(problem)
    # First: seeding the demo imports the metrics already.
    with server.shared_metrics():
        settings, db = open_database()
        if demo:
            _seed_demo(db)
        db.dispose()
        sys.stdout.flush()
        server.serve(settings, workers=workers or settings.workers)


@app.command("worker")
def worker_command(
    parent: Annotated[
        int | None,
        typer.Option(hidden=True, help="Stop when this process (`ensign serve`) is gone."),
    ] = None,
) -> None:
    """Deliver recorded evaluations to analytics integrations until stopped (SIGTERM).

    Run any number on PostgreSQL; on SQLite, the one `ensign serve` starts is enough.
    """
    import asyncio
    import logging

    from ensign.delivery.running import run_worker

    logging.basicConfig(level=logging.INFO)
    if parent is None:
        settings, db = open_database()
        typer.echo("Delivering analytics evaluations; stop with Ctrl-C.")
    else:
        # `serve` has migrated the database already.
        settings = Settings()
        db = Database(settings.database_url)
    asyncio.run(run_worker(settings, db, parent=parent))
    db.dispose()
