"""Dashboard sessions live on the server: a copied cookie stops working when its session ends,
at sign-out, when the password changes and when the user is removed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ensign.cli import app as cli_app
from tests.dashboard.conftest import PASSWORD, Browser

COOKIE = "ensign_session"


def _is_signed_in(app: Any, cookie: str) -> bool:
    # A fresh client each time, as another browser holding only this cookie.
    client = TestClient(app, cookies={COOKIE: cookie})
    response = client.get("/projects", follow_redirects=False)
    assert response.status_code in (200, 303), response.text
    return response.status_code == 200


def _second_device(client: TestClient, email: str, password: str = PASSWORD) -> str:
    other = Browser(TestClient(client.app))
    other.refresh_csrf()
    response = other.post("/sign-in", {"email": email, "password": password})
    assert response.status_code == 303, response.text
    cookie = other.client.cookies.get(COOKIE)
    assert cookie is not None
    return cookie


def _cli(database_url: str, *args: str) -> str:
    result = CliRunner().invoke(cli_app, list(args), env={"ENSIGN_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    return result.output


def test_sign_out__copied_cookie__no_longer_signs_in(signed_in: Browser, user: str) -> None:
    # Given: a copy of the signed-in cookie, and the same user signed in on another device
    copied = signed_in.client.cookies.get(COOKIE)
    assert copied is not None
    other_device = _second_device(signed_in.client, user)

    # When: the user signs out
    assert signed_in.post("/sign-out").status_code == 303

    # Then: the copy is refused; the other device's session goes on
    probe = signed_in.client.app
    assert not _is_signed_in(probe, copied)
    assert _is_signed_in(probe, other_device)


def test_set_password__cli__ends_every_session_and_the_new_password_works(
    signed_in: Browser, user: str, database_url: str
) -> None:
    # Given: the user signed in on two devices
    copied = signed_in.client.cookies.get(COOKIE)
    assert copied is not None
    other_device = _second_device(signed_in.client, user)

    # When: an administrator sets a new password
    output = _cli(
        database_url, "user", "set-password", "--email", user, "--password", "a new password"
    )

    # Then: both sessions ended; the old password fails and the new one signs in
    assert "sessions have ended" in output
    probe = signed_in.client.app
    assert not _is_signed_in(probe, copied)
    assert not _is_signed_in(probe, other_device)
    signed_in.refresh_csrf()
    refused = signed_in.post("/sign-in", {"email": user, "password": PASSWORD})
    assert refused.status_code == 400
    assert _second_device(signed_in.client, user, "a new password")


def test_remove__cli__ends_the_users_sessions(
    signed_in: Browser, user: str, database_url: str
) -> None:
    copied = signed_in.client.cookies.get(COOKIE)
    assert copied is not None

    output = _cli(database_url, "user", "remove", "--email", user.upper())

    assert f"Removed {user}" in output
    assert not _is_signed_in(signed_in.client.app, copied)
    signed_in.refresh_csrf()
    assert signed_in.post("/sign-in", {"email": user, "password": PASSWORD}).status_code == 400


def test_user_cli__unknown_email__fails_with_a_message(database_url: str) -> None:
    for args in (["remove"], ["set-password", "--password", "long enough"]):
        result = CliRunner().invoke(
            cli_app,
            ["user", *args, "--email", "nobody@example.com"],
            env={"ENSIGN_DATABASE_URL": database_url},
        )
        assert result.exit_code == 1
        assert "no user with the email nobody@example.com" in result.output


def test_session__ended__cookie_forgets_it(
    signed_in: Browser, user: str, database_url: str
) -> None:
    # Given: a session ended elsewhere (the password was set from the command line)
    _cli(database_url, "user", "set-password", "--email", user, "--password", "a new password")

    # When: the browser comes back
    response = signed_in.get("/projects")

    # Then: it is sent to sign in, with a cookie that names no session any more
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in")
    assert "set-cookie" in response.headers
