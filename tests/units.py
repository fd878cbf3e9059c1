"""Tests that set up rows directly work in a unit of work as the app does (its write units
bump revisions and tell the snapshot cache), through the unit's session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from ensign.storage.unit_of_work import UnitOfWork


@contextmanager
def unit_session(unit: UnitOfWork) -> Iterator[Session]:
    yield unit.session
