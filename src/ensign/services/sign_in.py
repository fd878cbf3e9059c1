"""Limits on dashboard sign-in: attempts counted per email and per client address, and
password checks run on one low-priority thread, so that a flood of guesses neither tries many
passwords nor takes the CPU and the database from the SDK API."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ensign.errors import RateLimited
from ensign.services.accounts import Credentials, normalise_email, verify_password

# One Argon2 check already keeps several cores busy (its four lanes are threads) and floods
# the memory bus, slowing whatever runs beside it. So checks wait for each other, and after
# each one the thread rests twice as long as the check took: back-to-back checks use at most a
# third of the time, and the SDK API runs undisturbed the rest. The attempt limits bound how
# long the queue can get.
VERIFIERS = 1
REST_PER_SECOND_OF_CHECK = 2.0
# Linux's nice value is per thread and Argon2's lane threads inherit it: queued checks then
# slow down sign-ins, not request handling.
VERIFIER_NICENESS = 10
# No email is longer; longer keys would only let one request fill memory.
MAX_KEY_LENGTH = 254


@dataclass(frozen=True)
class SignInLimits:
    attempts_per_account: int
    attempts_per_address: int
    window_seconds: int


class SignInGate:
    """Admits sign-in attempts within the limits (a moving window per email and per address,
    kept in this process's memory) and checks passwords on its own thread."""

    def __init__(self, limits: SignInLimits) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_account = _item(limits.attempts_per_account, limits.window_seconds)
        self._per_address = _item(limits.attempts_per_address, limits.window_seconds)
        self._executor = ThreadPoolExecutor(
            VERIFIERS, thread_name_prefix="ensign-sign-in", initializer=_lower_priority
        )
        self._rest_until = 0.0

    def admit(self, email: str, address: str) -> None:
        """Count an attempt, or raise `RateLimited` (counting nothing more) when the address or
        the email has used up its window. Checked before the password, which a refused attempt
        never reaches."""
        for item, kind, key in (
            (self._per_address, "address", address_key(address)),
            (self._per_account, "account", account_key(email)),
        ):
            if item is not None and not self._limiter.hit(item, "sign-in", kind, key):
                reset_at, _ = self._limiter.get_window_stats(item, "sign-in", kind, key)
                wait = max(1, math.ceil(reset_at - time.time()))
                raise RateLimited(
                    f"Too many sign-in attempts. Try again in {_duration(wait)}.",
                    retry_after_seconds=wait,
                )

    def succeeded(self, email: str) -> None:
        """Forget the email's failed attempts once its password was given."""
        if self._per_account is not None:
            self._limiter.clear(self._per_account, "sign-in", "account", account_key(email))

    async def verify(self, credentials: Credentials | None, password: str) -> str:
        """`accounts.verify_password` on the gate's thread, one check at a time."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._paced, credentials, password)

    def _paced(self, credentials: Credentials | None, password: str) -> str:
        time.sleep(max(0.0, self._rest_until - time.monotonic()))
        started = time.monotonic()
        try:
            return verify_password(credentials, password)
        finally:
            finished = time.monotonic()
            self._rest_until = finished + REST_PER_SECOND_OF_CHECK * (finished - started)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def account_key(email: str) -> str:
    return normalise_email(email)[:MAX_KEY_LENGTH]


def address_key(address: str) -> str:
    """The address attempts are counted by: an IPv6 client by its /64, since one host
    usually holds the whole prefix."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:MAX_KEY_LENGTH]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _item(amount: int, window_seconds: int) -> RateLimitItem | None:
    return RateLimitItemPerSecond(amount, window_seconds) if amount > 0 else None


def _duration(seconds: int) -> str:
    if seconds >= 120:
        return f"{math.ceil(seconds / 60)} minutes"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def _lower_priority() -> None:
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + VERIFIER_NICENESS))
    except OSError:
        pass
