"""Queries for dashboard users and server secrets. Callers own the session."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ensign.storage.user_models import ServerSecret, User


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email))


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def add_user(session: Session, user: User) -> bool:
    """Insert a user; False when the email is taken (checked by the unique index)."""
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        return False
    return True


def secret(session: Session, name: str) -> str | None:
    row = session.get(ServerSecret, name)
    return None if row is None else row.value


def add_secret_once(session: Session, name: str, value: str) -> str:
    """Store `value` under `name` unless another process did first; answer the stored one."""
    try:
        with session.begin_nested():
            session.add(ServerSecret(name=name, value=value))
            session.flush()
    except IntegrityError:
        pass
    stored = secret(session, name)
    assert stored is not None
    return stored
