"""The integrations admin API: configuration, validation, status and the test event."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ensign.errors import InvalidInput
from ensign.services.integrations import check_base_url
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.fakes.fixtures import Env, Served
from tests.fakes.script import Answer

BASE = "/api/v1/environments/{key}/integrations/{kind}/"
NOT_PUBLIC = (
    "base_url: must resolve only to public addresses, not to private, loopback, link-local or "
    "shared ones. To send to such an address in local development, set "
    "ENSIGN_ALLOW_PRIVATE_DESTINATIONS=true."
)


def url(env: Env, kind: str, suffix: str = "") -> str:
    return BASE.format(key=env.client_key, kind=kind) + suffix


def test_heap__crud__round_trip_and_snapshot_follows(
    client: TestClient, organisation: Organisation, env: Env, state: AppState
) -> None:
    headers = organisation.headers
    # Create with a region
    created = client.post(
        url(env, "heap"), headers=headers, json={"api_key": "123", "region": "eu"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["base_url"] == "https://c.eu.heap-api.com"
    assert body["event_name"] == "Flagsmith Feature Flags"
    assert body["enabled"] is True
    assert body["feature_names"] is None
    integration_id = body["id"]
    assert state.cache.for_key(env.client_key).integrations[0].id == integration_id  # type: ignore[union-attr]
    # List and read
    assert [i["id"] for i in client.get(url(env, "heap"), headers=headers).json()] == [
        integration_id
    ]
    assert client.get(url(env, "heap", f"{integration_id}/"), headers=headers).json() == body
    # Update: only some features, a custom event name
    updated = client.put(
        url(env, "heap", f"{integration_id}/"),
        headers=headers,
        json={"feature_names": ["banner", "zero"], "event_name": "Flags"},
    )
    assert updated.status_code == 200
    assert updated.json()["feature_names"] == ["banner", "zero"]
    assert updated.json()["event_name"] == "Flags"
    (target,) = state.cache.for_key(env.client_key).integrations  # type: ignore[union-attr]
    assert target.feature_names == frozenset({"banner", "zero"})
    # Read under the wrong kind
    assert (
        client.get(url(env, "mixpanel", f"{integration_id}/"), headers=headers).status_code == 404
    )
    # Delete
    assert client.delete(url(env, "heap", f"{integration_id}/"), headers=headers).status_code == 204
    assert client.get(url(env, "heap"), headers=headers).json() == []
    assert state.cache.for_key(env.client_key).integrations == ()  # type: ignore[union-attr]


def test_mixpanel__regions__hosts(client: TestClient, organisation: Organisation, env: Env) -> None:
    created = client.post(
        url(env, "mixpanel"), headers=organisation.headers, json={"api_key": "tok", "region": "in"}
    )
    assert created.json()["base_url"] == "https://api-in.mixpanel.com"
    assert created.json()["ignore_time"] is True


def test_create__second_of_a_kind__400(
    client: TestClient, organisation: Organisation, env: Env
) -> None:
    headers = organisation.headers
    assert client.post(url(env, "heap"), headers=headers, json={"api_key": "1"}).status_code == 201
    second = client.post(url(env, "heap"), headers=headers, json={"api_key": "2"})
    assert second.status_code == 400
    assert second.json()["detail"] == "This integration already exists for this environment."
    assert (
        client.post(url(env, "mixpanel"), headers=headers, json={"api_key": "t"}).status_code == 201
    )


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("heap", {"api_key": "1", "region": "in"}, "region: must be one of us, eu."),
        ("mixpanel", {"api_key": "1", "region": "mars"}, "region: must be one of us, eu, in."),
        ("heap", {"region": "us"}, "api_key: this field is required."),
        ("heap", {"api_key": ""}, "api_key: 1 to 200 characters are required."),
        ("heap", {"api_key": "1", "base_url": "ftp://x.example"}, "base_url: must use https."),
        (
            "heap",
            {"api_key": "1", "base_url": "http://heapanalytics.com"},
            "base_url: must use https.",
        ),
        (
            "heap",
            {"api_key": "1", "base_url": "https://127.0.0.1:8443"},
            NOT_PUBLIC,
        ),
        (
            "mixpanel",
            {"api_key": "1", "base_url": "https://10.1.2.3"},
            NOT_PUBLIC,
        ),
        (
            "mixpanel",
            {"api_key": "1", "base_url": "https://169.254.169.254/latest"},
            NOT_PUBLIC,
        ),
        (
            "heap",
            {"api_key": "1", "base_url": "https://localhost"},
            NOT_PUBLIC,
        ),
        ("heap", {"api_key": "1", "base_url": "https://100.64.0.1"}, NOT_PUBLIC),
        ("heap", {"api_key": "1", "base_url": "https://100.100.100.200/latest"}, NOT_PUBLIC),
        ("mixpanel", {"api_key": "1", "base_url": "https://[2002:7f00:1::1]"}, NOT_PUBLIC),
        ("mixpanel", {"api_key": "1", "base_url": "https://[2002:a9fe:a9fe::1]"}, NOT_PUBLIC),
        (
            "heap",
            {"api_key": "1", "base_url": "heapanalytics.com/api"},
            "base_url: must start with https:// (no scheme was given).",
        ),
        (
            "heap",
            {"api_key": "1", "feature_names": ["a"], "tag": "t"},
            "Give either feature_names or tag, not both.",
        ),
    ],
)
def test_create__invalid__400_naming_the_rule(
    strict_client: tuple[TestClient, AppState],
    organisation: Organisation,
    env: Env,
    kind: str,
    payload: dict[str, Any],
    message: str,
) -> None:
    client, _ = strict_client
    response = client.post(url(env, kind), headers=organisation.headers, json=payload)
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == message


@pytest.mark.parametrize(
    "base_url",
    [
        "https://vendor.example/a\r\nX-Injected: 1",
        "https://vendor.example/\nhook",
        "https://vendor.example\x00/hook",
        "https://vendor.example/\thook",
        "https://vendor.example/\x7fhook",
        "https://vendor.example/\x85hook",
    ],
)
@pytest.mark.parametrize("private_allowed", [False, True])
def test_create__control_character_in_base_url__400_naming_the_field(
    client: TestClient,
    strict_client: tuple[TestClient, AppState],
    organisation: Organisation,
    env: Env,
    base_url: str,
    private_allowed: bool,
) -> None:
    api = client if private_allowed else strict_client[0]
    response = api.post(
        url(env, "heap"), headers=organisation.headers, json={"api_key": "1", "base_url": base_url}
    )
    assert response.status_code == 400, response.text
    # NUL is refused in every text the API takes, before the destination rules see it.
    assert response.json()["detail"] == (
        "base_url: must not contain NUL characters or unpaired surrogates."
        if "\x00" in base_url
        else "base_url: must not contain control characters (line breaks, tabs, NUL)."
    )
    assert api.get(url(env, "heap"), headers=organisation.headers).json() == []


def test_check_base_url__name_resolving_to_private__refused() -> None:
    with pytest.raises(InvalidInput, match="private"):
        check_base_url(
            "https://intranet.example", allow_private=False, resolve=lambda h, p: ["192.168.1.5"]
        )
    assert (
        check_base_url(
            "https://api.example/", allow_private=False, resolve=lambda h, p: ["93.184.216.34"]
        )
        == "https://api.example"
    )


def test_check_base_url__private_allowed__http_and_loopback_accepted() -> None:
    assert check_base_url("http://127.0.0.1:9000/", allow_private=True) == "http://127.0.0.1:9000"


def test_unknown_environment__404(client: TestClient, organisation: Organisation) -> None:
    response = client.post(
        "/api/v1/environments/nope/integrations/heap/",
        headers=organisation.headers,
        json={"api_key": "1"},
    )
    assert response.status_code == 404
    assert (
        client.get(
            "/api/v1/environments/nope/integrations/mixpanel/", headers=organisation.headers
        ).status_code
        == 404
    )


def test_other_organisation__404(client: TestClient, env: Env, state: AppState) -> None:
    from ensign.services.admin.organisations import create_organisation
    from ensign.services.keys import create_admin_key

    with state.units.write() as unit:
        other = create_organisation(unit, name="Other")
        key = create_admin_key(unit, other.id, "other")
    response = client.get(url(env, "heap"), headers={"Authorization": f"Api-Key {key}"})
    assert response.status_code == 404


def test_no_credentials__401(client: TestClient, env: Env) -> None:
    assert client.get(url(env, "heap")).status_code == 401


def test_deliveries_attempts_and_test_event(
    client: TestClient, organisation: Organisation, env: Env, state: AppState, vendors: Served
) -> None:
    # Given a Heap integration and a dispatcher running
    from ensign.delivery.worker import Dispatcher, DispatchSettings, make_client

    headers = organisation.headers
    created = client.post(
        url(env, "heap"), headers=headers, json={"api_key": "app", "base_url": vendors.heap_url}
    )
    integration_id = created.json()["id"]
    stop = threading.Event()

    def run() -> None:
        async def main() -> None:
            config = DispatchSettings(
                timeout_seconds=1,
                poll_interval_seconds=0.05,
                refresh_interval_seconds=0.05,
                allow_private_destinations=True,
            )
            async with make_client(config) as http:
                dispatcher = Dispatcher(state.db, http, config)
                task = asyncio.create_task(dispatcher.run())
                while not stop.is_set():
                    await asyncio.sleep(0.02)
                dispatcher.stop()
                await task

        asyncio.run(main())

    thread = threading.Thread(target=run)
    thread.start()
    try:
        # When a test event is sent
        ok = client.post(url(env, "heap", f"{integration_id}/test/"), headers=headers)
        vendors.heap.script.then(Answer(400, body=b"Bad request: nope"))
        refused = client.post(url(env, "heap", f"{integration_id}/test/"), headers=headers)
    finally:
        stop.set()
        thread.join()
    # Then what the vendor answered comes back
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "delivered"
    assert ok.json()["status_code"] == 200
    assert vendors.heap.events[0]["identity"] == "ensign-test-event"
    assert refused.json() == {
        "status": "failed",
        "status_code": 400,
        "response": "Bad request: nope",
        "error": "HTTP 400: Bad request: nope",
    }
    deliveries = client.get(
        url(env, "heap", f"{integration_id}/deliveries/"), headers=headers
    ).json()
    assert deliveries["pending"] == 0
    assert deliveries["last_error"] == "HTTP 400: Bad request: nope"
    attempts = client.get(
        url(env, "heap", f"{integration_id}/attempts/?page_size=1"), headers=headers
    ).json()
    assert attempts["count"] == 2
    assert attempts["results"][0]["outcome"] == "failed"
    assert attempts["next"] is not None


def test_attempts__pages__bounded_and_404_past_the_last_as_other_lists(
    client: TestClient, organisation: Organisation, env: Env
) -> None:
    # Given a Heap integration that has sent nothing yet
    headers = organisation.headers
    created = client.post(url(env, "heap"), headers=headers, json={"api_key": "123"})
    attempts = url(env, "heap", f"{created.json()['id']}/attempts/")
    # When its attempt log is read, first and past its last page
    first = client.get(attempts, headers=headers)
    past = client.get(f"{attempts}?page=2", headers=headers)
    far = client.get(f"{attempts}?page=1000000000", headers=headers)
    beyond = client.get(f"{attempts}?page=1000000001", headers=headers)
    # Then the first page is empty, and the others answer as the projects list does
    assert first.status_code == 200
    assert first.json() == {"count": 0, "next": None, "previous": None, "results": []}
    projects = client.get("/api/v1/projects/?page=2", headers=headers)
    assert (past.status_code, past.json()) == (404, projects.json())
    assert far.status_code == 404
    too_far = client.get("/api/v1/projects/?page=1000000001", headers=headers)
    assert (beyond.status_code, beyond.json()) == (too_far.status_code, too_far.json())
    assert beyond.status_code == 400


def test_test_event__no_dispatcher__queued_after_the_set_wait(
    client: TestClient, organisation: Organisation, env: Env, state: AppState
) -> None:
    # Given a Heap integration, no dispatcher, and a short wait for the vendor's answer
    state.settings = state.settings.model_copy(update={"test_event_wait_seconds": 0.3})
    headers = organisation.headers
    created = client.post(url(env, "heap"), headers=headers, json={"api_key": "123"})
    # When a test event is sent
    started = time.monotonic()
    response = client.post(url(env, "heap", f"{created.json()['id']}/test/"), headers=headers)
    # Then it answers once the wait is over (not the default: delivery timeout + 5 s), queued
    assert time.monotonic() - started < 3
    assert response.status_code == 202
    assert response.json() == {
        "status": "queued",
        "status_code": None,
        "response": None,
        "error": "No dispatcher answered in time; the test event stays queued.",
    }


def test_metrics__prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "ensign_delivery_requests_total" in response.text or "ensign_delivery" in response.text
