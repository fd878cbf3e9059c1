"""Dashboard accounts: users with Argon2-hashed passwords, their signed-in sessions, the
principal a signed-in user acts as, and the secret that signs session cookies."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from ensign.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from ensign.services.keys import AdminPrincipal
from ensign.settings import Settings
from ensign.storage import environments as environment_store
from ensign.storage import users as user_store
from ensign.storage.models import DashboardSession, User, utcnow

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1000
SESSION_SECRET = "dashboard-session"
SESSION_LIFETIME = dt.timedelta(days=14)


@functools.cache
def _hashing() -> tuple[PasswordHasher, str]:
    """The hasher for `ENSIGN_PASSWORD_HASH_PROFILE`, and a hash to verify unknown emails
    against, which keeps them as slow as wrong passwords. Read on first use, not at import:
    the web, the CLI and the demo all hash, and a process that never does pays nothing."""
    profile = getattr(profiles, Settings().password_hash_profile)
    hasher = PasswordHasher.from_parameters(profile)
    return hasher, hasher.hash("not-a-password")


@dataclass(frozen=True)
class UserPrincipal(AdminPrincipal):
    """A signed-in dashboard user; the admin use cases see them as their organisation."""

    user_id: int = 0

    @property
    def actor(self) -> str:
        return f"user:{self.name}"


def principal_for(user: User) -> UserPrincipal:
    return UserPrincipal(user.organisation_id, 0, user.email, user_id=user.id)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str:
    email = normalise_email(email)
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 254 or " " in email:
        raise InvalidInput("email: enter a valid email address.", field="email")
    return email


def check_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"password: use at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    return password


def create_user(session: Session, *, email: str, password: str, organisation_id: int) -> User:
    """Create a dashboard user in an organisation."""
    email = check_email(email)
    check_password(password)
    if environment_store.organisation_by_id(session, organisation_id) is None:
        raise InvalidInput("organisation: no such organisation.", field="organisation")
    user = User(
        organisation_id=organisation_id, email=email, password_hash=_hashing()[0].hash(password)
    )
    if not user_store.add_user(session, user):
        raise Conflict("email: a user with this email already exists.", field="email")
    return user


@dataclass(frozen=True)
class Credentials:
    """What checking a password needs, read before the check so that no transaction is open
    while Argon2 runs."""

    user_id: int
    password_hash: str


def credentials_for(session: Session, email: str) -> Credentials | None:
    user = user_store.user_by_email(session, normalise_email(email))
    return None if user is None else Credentials(user.id, user.password_hash)


def verify_password(credentials: Credentials | None, password: str) -> str:
    """Check a password against the stored hash; answer the hash to keep (a new one when the
    hashing parameters changed). One message for every failure, so that the form does not
    reveal which emails exist. Argon2 is slow on purpose (a large part of a second of CPU and
    64 MiB of memory): run it outside any transaction, on a thread that may wait."""
    hasher, dummy_hash = _hashing()
    stored = credentials.password_hash if credentials else dummy_hash
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        credentials = None
    if credentials is None:
        raise AuthenticationFailed("Wrong email or password.")
    return hasher.hash(password) if hasher.check_needs_rehash(stored) else stored


def start_session(session: Session, credentials: Credentials, password_hash: str) -> str:
    """Record a sign-in whose password was verified; answer the new session's token. Fails
    when the password changed (or the user went) since the credentials were read."""
    user = user_store.user_by_id(session, credentials.user_id)
    if user is None or user.password_hash != credentials.password_hash:
        raise AuthenticationFailed("Wrong email or password.")
    now = utcnow()
    user.password_hash = password_hash
    user.last_sign_in_at = now
    user_store.delete_expired_sessions(session, user.id, now)
    token = secrets.token_urlsafe(32)
    user_store.add_session(
        session,
        DashboardSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        ),
    )
    return token


def principal_for_session(session: Session, token: str) -> UserPrincipal | None:
    """The user a session token signs in, while the session lives."""
    user = user_store.user_for_session(session, _token_hash(token), utcnow())
    return None if user is None else principal_for(user)


def end_session(session: Session, token: str) -> None:
    user_store.delete_session(session, _token_hash(token))


def hash_password(password: str) -> str:
    """A checked password's Argon2 hash; slow, so made before any transaction opens."""
    return _hashing()[0].hash(check_password(password))


def set_password(session: Session, *, email: str, password_hash: str) -> User:
    """Give a user a new password (from `hash_password`) and end every session they have, on
    every device."""
    user = user_store.user_by_email(session, normalise_email(email))
    if user is None:
        raise NotFound(f"email: no user with the email {normalise_email(email)}.", field="email")
    user.password_hash = password_hash
    user_store.delete_user_sessions(session, user.id)
    user_store.save(session)
    return user


def remove_user(session: Session, *, email: str) -> User:
    """Remove a user; their sessions end with them."""
    user = user_store.user_by_email(session, normalise_email(email))
    if user is None:
        raise NotFound(f"email: no user with the email {normalise_email(email)}.", field="email")
    user_store.delete_user_sessions(session, user.id)
    user_store.delete_user(session, user)
    return user


def _token_hash(token: str) -> str:
    # Only a hash is stored, so that reading the table does not hand out live sessions.
    return hashlib.sha256(token.encode()).hexdigest()


def session_secret(session: Session, configured: str) -> str:
    """The configured secret, else one generated once and kept in the database."""
    if configured:
        return configured
    return user_store.secret(session, SESSION_SECRET) or user_store.add_secret_once(
        session, SESSION_SECRET, secrets.token_urlsafe(48)
    )
