"""Security headers on dashboard responses, and templates the Content-Security-Policy allows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ensign.web import dashboard
from tests.dashboard.conftest import Browser, Seeded

TEMPLATES = Path(dashboard.__file__).parent / "templates"
# What `script-src 'self'` and `style-src 'self'` refuse: script and style written in the page.
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
    "style element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
}


def _policy(header: str) -> dict[str, str]:
    directives = (d.strip().split(None, 1) for d in header.split(";") if d.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def _assert_secured(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    policy = _policy(headers["content-security-policy"])
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"


def test_sign_in_page__signed_out__sends_the_security_headers(anonymous: Browser) -> None:
    _assert_secured(anonymous.get("/sign-in"))


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/projects", 200, id="page"),
        pytest.param("/environments/{env}/features", 200, id="environment-page"),
        pytest.param("/environments/{env}/identities", 200, id="identities-page"),
        pytest.param("/environments/999999/features", 404, id="error-page"),
    ],
)
def test_pages__signed_in__send_the_security_headers(
    signed_in: Browser, seeded: Seeded, path: str, status: int
) -> None:
    response = signed_in.get(path.format(env=seeded.environment_id))
    assert response.status_code == status
    _assert_secured(response)


def test_htmx_fragment__signed_in__sends_the_security_headers(
    signed_in: Browser, seeded: Seeded
) -> None:
    response = signed_in.get(
        f"/environments/{seeded.environment_id}/features?q=ban", headers={"HX-Request": "true"}
    )
    assert "<html" not in response.text
    _assert_secured(response)


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_template__markup__has_no_inline_script_or_style(template: Path) -> None:
    source = template.read_text(encoding="utf-8")
    found = {what: pattern.findall(source) for what, pattern in INLINE.items()}
    assert {what: hits for what, hits in found.items() if hits} == {}
