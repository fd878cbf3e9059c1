"""Who may act, and with which keys: admin API keys, environments' server keys, dashboard
users and their signed-in sessions, and the secrets the server keeps for itself."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ensign.storage.faults import flush
from ensign.storage.models import AdminApiKey, DashboardSession, ServerKey, ServerSecret, User
from ensign.storage.pagination import Page, Window, page

# --- keys ---------------------------------------------------------------------------------------


def master_keys(session: Session, organisation_id: int, window: Window) -> Page[AdminApiKey]:
    statement = (
        select(AdminApiKey)
        .where(AdminApiKey.organisation_id == organisation_id)
        .order_by(AdminApiKey.id)
    )
    return page(session, statement, window)


def master_key_by_id(session: Session, key_id: int) -> AdminApiKey | None:
    return session.get(AdminApiKey, key_id)


def add_master_key(session: Session, row: AdminApiKey) -> AdminApiKey:
    session.add(row)
    session.flush()
    return row


def master_key_by_hash(session: Session, key_hash: str) -> AdminApiKey | None:
    return session.scalar(select(AdminApiKey).where(AdminApiKey.key_hash == key_hash))


def server_keys(session: Session, environment_id: int, window: Window) -> Page[ServerKey]:
    statement = (
        select(ServerKey).where(ServerKey.environment_id == environment_id).order_by(ServerKey.id)
    )
    return page(session, statement, window)


def server_key_by_id(session: Session, key_id: int) -> ServerKey | None:
    return session.get(ServerKey, key_id)


def add_server_key(session: Session, row: ServerKey) -> ServerKey:
    """Add a server key; a clash of its random key is a `Conflict` to retry."""
    session.add(row)
    flush(session, conflict="Could not allocate a key; try again.")
    return row


def delete_server_key(session: Session, row: ServerKey) -> None:
    session.delete(row)
    session.flush()


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


def delete_user(session: Session, user: User) -> None:
    session.delete(user)
    session.flush()


def save(session: Session) -> None:
    """Write what the unit changed on loaded rows so far."""
    session.flush()


# --- dashboard sessions -------------------------------------------------------------------------


def add_session(session: Session, row: DashboardSession) -> None:
    session.add(row)
    session.flush()


def user_for_session(session: Session, token_hash: str, now: dt.datetime) -> User | None:
    """The user a live session belongs to; None for an unknown, ended or expired one."""
    return session.scalar(
        select(User)
        .join(DashboardSession, DashboardSession.user_id == User.id)
        .where(DashboardSession.token_hash == token_hash, DashboardSession.expires_at > now)
    )


def delete_session(session: Session, token_hash: str) -> None:
    session.execute(delete(DashboardSession).where(DashboardSession.token_hash == token_hash))


def delete_user_sessions(session: Session, user_id: int) -> None:
    session.execute(delete(DashboardSession).where(DashboardSession.user_id == user_id))


def delete_expired_sessions(session: Session, user_id: int, now: dt.datetime) -> None:
    session.execute(
        delete(DashboardSession).where(
            DashboardSession.user_id == user_id, DashboardSession.expires_at <= now
        )
    )


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
