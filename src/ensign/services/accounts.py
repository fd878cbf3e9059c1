"""Dashboard accounts: users with Argon2-hashed passwords, the principal a signed-in user
acts as, and the secret that signs session cookies."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from ensign.errors import AuthenticationFailed, Conflict, InvalidInput
from ensign.services.keys import AdminPrincipal
from ensign.storage import users as user_store
from ensign.storage.models import Organisation, User, utcnow

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1000
SESSION_SECRET = "dashboard-session"

_hasher = PasswordHasher()
# Verifying against this keeps unknown emails as slow as wrong passwords.
_DUMMY_HASH = _hasher.hash("not-a-password")


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
    if session.get(Organisation, organisation_id) is None:
        raise InvalidInput("organisation: no such organisation.", field="organisation")
    user = User(organisation_id=organisation_id, email=email, password_hash=_hasher.hash(password))
    if not user_store.add_user(session, user):
        raise Conflict("email: a user with this email already exists.", field="email")
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The user with this email and password; one message for every failure, so that the
    form does not reveal which emails exist."""
    user = user_store.user_by_email(session, normalise_email(email))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None:
        raise AuthenticationFailed("Wrong email or password.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_sign_in_at = utcnow()
    session.flush()
    return user


def get_user(session: Session, user_id: int) -> User | None:
    return user_store.user_by_id(session, user_id)


def session_secret(session: Session, configured: str) -> str:
    """The configured secret, else one generated once and kept in the database."""
    if configured:
        return configured
    return user_store.secret(session, SESSION_SECRET) or user_store.add_secret_once(
        session, SESSION_SECRET, secrets.token_urlsafe(48)
    )
