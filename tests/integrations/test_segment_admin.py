"""Segment and RudderStack through the admin API: Segment's regions, RudderStack's required
data plane URL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Organisation
from tests.fakes.fixtures import Env

BASE = "/api/v1/environments/{key}/integrations/{kind}/"


def test_segment__regions__us_by_default_and_the_eu_host(
    client: TestClient, organisation: Organisation, env: Env
) -> None:
    us = client.post(
        BASE.format(key=env.client_key, kind="segment"),
        headers=organisation.headers,
        json={"api_key": "wk"},
    )
    assert us.status_code == 201, us.text
    assert (us.json()["region"], us.json()["base_url"]) == ("us", "https://api.segment.io")
    eu = client.patch(
        BASE.format(key=env.client_key, kind="segment") + f"{us.json()['id']}/",
        headers=organisation.headers,
        json={"region": "eu"},
    )
    assert eu.json()["base_url"] == "https://events.eu1.segmentapis.com"
    mars = client.post(
        BASE.format(key=env.client_key, kind="segment"),
        headers=organisation.headers,
        json={"api_key": "wk", "region": "mars"},
    )
    assert mars.status_code == 400


def test_rudderstack__data_plane_url__required(
    client: TestClient, organisation: Organisation, env: Env
) -> None:
    path = BASE.format(key=env.client_key, kind="rudderstack")
    missing = client.post(path, headers=organisation.headers, json={"api_key": "wk"})
    assert missing.status_code == 400, missing.text
    assert missing.json()["field"] == "base_url"
    region = client.post(path, headers=organisation.headers, json={"api_key": "wk", "region": "us"})
    assert region.status_code == 400
    created = client.post(
        path,
        headers=organisation.headers,
        json={"api_key": "wk", "base_url": "https://93.184.216.34/"},
    )
    assert created.status_code == 201, created.text
    assert (created.json()["region"], created.json()["base_url"]) == (None, "https://93.184.216.34")
