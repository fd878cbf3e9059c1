"""Key generation and admin API key checks."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ensign.errors import AuthenticationFailed
from ensign.storage import users as user_store
from ensign.storage.models import AdminApiKey, utcnow
from ensign.storage.unit_of_work import UnitOfWork

# The shortuuid alphabet: no 0/O, 1/l/I, so keys survive being read aloud or retyped.
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def random_token(length: int = 22) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_client_key() -> str:
    """An environment's client key: 22 characters, like the reference's shortuuids."""
    return random_token()


def new_server_key() -> str:
    return "ser." + random_token()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class AdminPrincipal:
    """Who is calling the admin API: an organisation, through one of its keys."""

    organisation_id: int
    key_id: int
    name: str

    @property
    def actor(self) -> str:
        return f"api-key:{self.name}"


def create_admin_key(unit: UnitOfWork, organisation_id: int, name: str) -> str:
    """Create an admin API key; the secret is returned once and only its hash is kept."""
    key = "ens_" + random_token(40)
    user_store.add_master_key(
        unit.session,
        AdminApiKey(
            organisation_id=organisation_id,
            name=name,
            prefix=key[:10],
            key_hash=hash_key(key),
            active=True,
        ),
    )
    return key


def authenticate_admin(session: Session, key: str) -> AdminPrincipal:
    row = user_store.master_key_by_hash(session, hash_key(key))
    if row is None or not row.active:
        raise AuthenticationFailed("Invalid API key.")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise AuthenticationFailed("This API key has expired.")
    return AdminPrincipal(row.organisation_id, row.id, row.name)
