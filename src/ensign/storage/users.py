"""Who may act, and with which keys: admin API keys, environments' server keys, dashboard
users, and the secrets the server keeps for itself."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ensign.storage.models import AdminApiKey, ServerKey, ServerSecret, User
from ensign.storage.pagination import Page, Window, page

# --- keys ---------------------------------------------------------------------------------------


def master_keys(session: Session, organisation_id: int, window: Window) -> Page[AdminApiKey]:
    statement = (
        select(AdminApiKey)
        .where(AdminApiKey.organisation_id == organisation_id)
        .order_by(AdminApiKey.id)
    )
    return page(session, statement, window)


def master_key_by_hash(session: Session, key_hash: str) -> AdminApiKey | None:
    return session.scalar(select(AdminApiKey).where(AdminApiKey.key_hash == key_hash))


def server_keys(session: Session, environment_id: int, window: Window) -> Page[ServerKey]:
    statement = (
        select(ServerKey).where(ServerKey.environment_id == environment_id).order_by(ServerKey.id)
    )
    return page(session, statement, window)


def first_server_key(session: Session, environment_id: int) -> str | None:
    return session.scalar(
        select(ServerKey.key).where(ServerKey.environment_id == environment_id).limit(1)
    )


# --- dashboard users ----------------------------------------------------------------------------


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


# --- the server's own secrets -------------------------------------------------------------------


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
