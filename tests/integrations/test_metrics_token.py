"""`/metrics` behind `ENSIGN_METRICS_TOKEN`: a bearer token when set, open when not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ensign.settings import Settings
from ensign.web.app import create_app

TOKEN = "scrape-7f3a9c"


@pytest.fixture
def guarded(database_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, metrics_token=TOKEN, _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="none"),
        pytest.param("Bearer wrong-token", id="wrong-token"),
        pytest.param(f"Basic {TOKEN}", id="other-scheme"),
        pytest.param("Bearer ", id="empty"),
    ],
)
def test_metrics__token_set_but_not_sent__401(
    guarded: TestClient, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = guarded.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert "# TYPE" not in response.text


def test_metrics__token_sent__prometheus_text(guarded: TestClient) -> None:
    response = guarded.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in response.text


def test_metrics__no_token_set__open(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200
