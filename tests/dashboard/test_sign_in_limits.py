"""Sign-in attempts are limited per email and per client address: past the limit the form
answers 429 with `Retry-After`, without checking the password."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from ensign.errors import RateLimited
from ensign.services.sign_in import SignInGate, SignInLimits, address_key
from ensign.settings import Settings
from ensign.web.app import build_state, create_app
from ensign.web.deps import AppState
from tests.dashboard.conftest import PASSWORD, Browser

Limited = Callable[..., AppState]


@pytest.fixture
def limited(database_url: str) -> Iterator[Limited]:
    """An app state with the sign-in limits given, over the test's database."""
    made: list[AppState] = []

    def make(**limits: int) -> AppState:
        settings = Settings(database_url=database_url, _env_file=None, **limits)  # type: ignore[call-arg]
        made.append(build_state(settings))
        return made[-1]

    yield make
    for state in made:
        state.sign_ins.close()
        state.db.dispose()


def _browser(state: AppState, address: str = "203.0.113.7") -> Browser:
    browser = Browser(TestClient(create_app(state=state), client=(address, 50000)))
    browser.refresh_csrf()
    return browser


def _sign_in(browser: Browser, email: str, password: str) -> int:
    return int(browser.post("/sign-in", {"email": email, "password": password}).status_code)


def test_sign_in__past_the_account_limit__429_with_retry_after_even_for_the_password(
    limited: Limited, user: str
) -> None:
    browser = _browser(limited(signin_attempts_per_account=2, signin_window_seconds=60))
    assert [_sign_in(browser, user, f"wrong {i}") for i in range(2)] == [400, 400]

    response = browser.post("/sign-in", {"email": user.upper(), "password": PASSWORD})

    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert "Too many sign-in attempts. Try again in" in response.text
    # Another account from the same address is not held back by this one's limit.
    assert _sign_in(browser, "other@example.com", "wrong") == 400


def test_sign_in__past_the_address_limit__429_for_any_email_from_there_only(
    limited: Limited, user: str
) -> None:
    state = limited(signin_attempts_per_address=2)
    spraying = _browser(state, "203.0.113.7")
    assert [_sign_in(spraying, f"guess{i}@example.com", "wrong") for i in range(2)] == [400, 400]

    response = spraying.post("/sign-in", {"email": user, "password": PASSWORD})

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert _sign_in(_browser(state, "198.51.100.9"), user, PASSWORD) == 303


def _gate(per_account: int = 3, per_address: int = 100, window_seconds: int = 60) -> SignInGate:
    return SignInGate(SignInLimits(per_account, per_address, window_seconds))


def _admitted(gate: SignInGate, attempts: int, email: str = "a@example.com") -> list[bool]:
    outcomes = []
    for _ in range(attempts):
        try:
            gate.admit(email, "203.0.113.7")
        except RateLimited:
            outcomes.append(False)
        else:
            outcomes.append(True)
    return outcomes


def test_gate__success__clears_the_accounts_attempts() -> None:
    gate = _gate(per_account=3)
    assert _admitted(gate, 3) == [True, True, True]

    gate.succeeded("A@Example.com ")

    assert _admitted(gate, 4) == [True, True, True, False]


def test_gate__refused__says_when_to_retry() -> None:
    gate = _gate(per_account=1, window_seconds=300)
    gate.admit("a@example.com", "203.0.113.7")
    with pytest.raises(RateLimited) as refused:
        gate.admit("a@example.com", "203.0.113.8")
    assert 290 <= refused.value.retry_after_seconds <= 300
    assert refused.value.detail == "Too many sign-in attempts. Try again in 5 minutes."


def test_gate__after_the_window__admits_again() -> None:
    gate = _gate(per_account=1, window_seconds=1)
    assert _admitted(gate, 2) == [True, False]

    time.sleep(1.1)

    assert _admitted(gate, 1) == [True]


def test_gate__limits_zero__turned_off() -> None:
    assert all(_admitted(_gate(per_account=0, per_address=0), 500))


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::2", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_address_key__ipv6__counted_by_its_64(address: str, key: str) -> None:
    assert address_key(address) == key
