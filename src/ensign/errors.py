"""Ensign's own exceptions. They carry a human message and no HTTP knowledge;
each web surface maps them to its status codes and body format in one place."""

from __future__ import annotations


class EnsignError(Exception):
    """Base of every error Ensign raises on purpose."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(EnsignError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class Conflict(EnsignError):
    """The change would break a uniqueness rule."""


class InvalidInput(EnsignError):
    """The input is malformed or breaks a documented limit."""


class UnparsableInput(InvalidInput):
    """The body is not in the format the surface reads (not JSON, or not an object)."""


class TargetingKeyMissing(InvalidInput):
    """The flag has rules that need an identity, and the caller named none."""


class AuthenticationFailed(EnsignError):
    """No credential, or one we do not know."""


class PermissionDenied(EnsignError):
    """A known credential that may not do this."""


class DatabaseUnavailable(EnsignError):
    """The database failed in a way a retry can fix (down, locked, timed out, serialisation).

    Storage raises it instead of letting driver exceptions travel up; every surface answers
    it with a 5xx so that clients retry."""


class RateLimited(EnsignError):
    """Too many attempts; `retry_after_seconds` says when to try again."""

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class AtCapacity(EnsignError):
    """A bounded resource of this process is full (the realtime streams); a retry after
    `retry_after_seconds` may find room."""

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds
