"""Listings read a page at a time: which slice to read, and the slice with the total count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """Which slice of a listing to read."""

    offset: int
    limit: int


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    count: int


def page(session: Session, statement: Select[T], window: Window) -> Page[T]:
    """The rows of `statement` (ordered) in `window`, and how many there are in all."""
    count = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    items = session.scalars(statement.offset(window.offset).limit(window.limit)).all()
    return Page(items, int(count or 0))
