"""What the commands share: the database, brought to the latest schema before any use, and
the way a command fails (a message on stderr, exit status 1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from ensign.errors import EnsignError
from ensign.settings import Settings
from ensign.storage.db import Database, migrate
from ensign.storage.unit_of_work import UnitOfWork, Units


def open_database() -> tuple[Settings, Database]:
    """Settings from the environment, and their database migrated to the latest schema."""
    settings = Settings()
    migrate(settings.database_url)
    return settings, Database(settings.database_url)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def unit_of_work(*, read_only: bool = False) -> Iterator[UnitOfWork]:
    """One command's unit of work, committed at the end unless `read_only`; Ensign's errors
    end the command with their message."""
    _, db = open_database()
    units = Units(db)
    try:
        with units.read() if read_only else units.write() as unit:
            yield unit
    except EnsignError as error:
        fail(error.detail)
    finally:
        db.dispose()
