"""Fixtures shared by the integration and delivery tests: served fakes and a configured
environment."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ensign.services import integrations
from ensign.services.importing import import_document
from ensign.services.keys import AdminPrincipal
from ensign.settings import Settings
from ensign.web.deps import AppState
from tests.conftest import Organisation, ServerProcess, free_port, wait_for
from tests.documents import standard_document
from tests.fakes.amplitude import FakeAmplitude
from tests.fakes.heap import FakeHeap
from tests.fakes.mixpanel import FakeMixpanel
from tests.fakes.script import ServedApp
from tests.fakes.segment import RUDDERSTACK, FakeSegment
from tests.fakes.webhook import FakeWebhook
from tests.units import unit_session

# A real `ensign serve` that delivers promptly to the fakes on loopback: short polls and
# backoffs, and a timeout short enough for the server to stop promptly (a hanging vendor
# then always has a request in flight, retried after each timeout).
SERVER_ENV = {
    "ENSIGN_ALLOW_PRIVATE_DESTINATIONS": "true",
    "ENSIGN_DELIVERY_BACKOFF_BASE_SECONDS": "0.05",
    "ENSIGN_DELIVERY_BACKOFF_CAP_SECONDS": "0.3",
    "ENSIGN_DELIVERY_POLL_INTERVAL_SECONDS": "0.05",
    "ENSIGN_DELIVERY_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, free_port(), log_path=tmp_path / "server.log")
    process.start(extra_env=SERVER_ENV)
    yield process
    process.stop()


@dataclass
class Connector:
    """Connects destinations to a served environment through the admin API, as a user would,
    and waits for the server's part instead of sleeping: until it serves the change, and until
    it has finished delivering."""

    server: ServerProcess
    organisation: Organisation
    # (environment key, kind, integration id) of each destination connected.
    connected: list[tuple[str, str, int]] = field(default_factory=list)

    def __call__(self, env_key: str, kind: str, **body: Any) -> int:
        """Create a `kind` integration with `body`; answer its id once the server sends to it."""
        with self.change(env_key):
            response = httpx.post(
                f"{self.server.api_url}environments/{env_key}/integrations/{kind}/",
                headers=self.organisation.headers,
                json=body,
            )
            assert response.status_code == 201, response.text
        integration_id = int(response.json()["id"])
        self.connected.append((env_key, kind, integration_id))
        return integration_id

    def served_at(self, env_key: str) -> str:
        """When the environment the server now serves was last changed."""
        response = httpx.get(f"{self.server.api_url}flags/", headers={"X-Environment-Key": env_key})
        assert response.status_code == 200, response.text
        return response.headers["x-flagsmith-document-updated-at"]

    @contextmanager
    def change(self, env_key: str) -> Iterator[None]:
        """Wait after the block until the server serves the change it made to the environment
        (each process's snapshot follows within its poll interval)."""
        before = self.served_at(env_key)
        yield
        wait_for(lambda: self.served_at(env_key) != before)

    def deliveries(self, env_key: str, kind: str, integration_id: int) -> dict[str, Any]:
        response = httpx.get(
            f"{self.server.api_url}environments/{env_key}/integrations/{kind}/"
            f"{integration_id}/deliveries/",
            headers=self.organisation.headers,
        )
        assert response.status_code == 200, response.text
        counts: dict[str, Any] = response.json()
        return counts

    def settled(self) -> None:
        """Wait until no destination connected has anything waiting or retrying: whatever
        would arrive twice has arrived by then."""
        wait_for(
            lambda: all(
                counts["pending"] == 0 and counts["retrying"] == 0
                for counts in (self.deliveries(*each) for each in self.connected)
            )
        )


@pytest.fixture
def connect(served: ServerProcess, organisation: Organisation) -> Connector:
    """Connects destinations to the served environment and waits for the server to follow."""
    return Connector(served, organisation)


@dataclass
class Served:
    heap: FakeHeap
    mixpanel: FakeMixpanel
    heap_url: str
    mixpanel_url: str
    amplitude: FakeAmplitude
    amplitude_url: str
    webhook: FakeWebhook
    # The fake receiver's root: a webhook's URL is this plus a path naming its secret.
    webhook_url: str


@pytest.fixture
def vendors() -> Iterator[Served]:
    heap, mixpanel = FakeHeap(), FakeMixpanel()
    heap_app, mixpanel_app = ServedApp(heap.app), ServedApp(mixpanel.app)
    heap_app.start()
    mixpanel_app.start()
    amplitude = FakeAmplitude()
    amplitude_app = ServedApp(amplitude.app)
    amplitude_app.start()
    webhook = FakeWebhook()
    webhook_app = ServedApp(webhook.app)
    webhook_app.start()
    yield Served(
        heap,
        mixpanel,
        heap_app.url,
        mixpanel_app.url,
        amplitude,
        amplitude_app.url,
        webhook,
        webhook_app.url,
    )
    heap.script.clear()
    mixpanel.script.clear()
    webhook.script.clear()
    heap_app.stop()
    mixpanel_app.stop()
    amplitude.script.clear()
    amplitude_app.stop()
    webhook_app.stop()


@dataclass
class SegmentServed:
    """The fake Segment and the fake RudderStack data plane, on sockets."""

    segment: FakeSegment
    rudderstack: FakeSegment
    segment_url: str
    rudderstack_url: str


@pytest.fixture
def segment_vendors() -> Iterator[SegmentServed]:
    segment, rudderstack = FakeSegment(), FakeSegment(RUDDERSTACK)
    apps = ServedApp(segment.app), ServedApp(rudderstack.app)
    for app in apps:
        app.start()
    yield SegmentServed(segment, rudderstack, apps[0].url, apps[1].url)
    for fake, app in zip((segment, rudderstack), apps, strict=True):
        fake.script.clear()
        app.stop()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=database_url,
        _env_file=None,
        allow_private_destinations=True,
        delivery_in_serve=False,
        delivery_timeout_seconds=1.0,
        delivery_backoff_base_seconds=0.05,
        delivery_backoff_cap_seconds=0.2,
        delivery_poll_interval_seconds=0.05,
    )


@dataclass(frozen=True)
class Env:
    client_key: str
    server_key: str
    environment_id: int
    principal: AdminPrincipal


@pytest.fixture
def env(state: AppState, organisation: Organisation) -> Env:
    with state.units.write() as unit, unit_session(unit) as session:
        result = import_document(session, organisation.id, standard_document())
    return Env(
        result.environment_key,
        result.server_key,
        result.environment_id,
        AdminPrincipal(organisation.id, 0, "tests"),
    )


def configure(state: AppState, env: Env, kind: str, base_url: str, **fields: object) -> int:
    """Create an integration through the service, as the admin API would."""
    # The destination's own settings (Heap's event_name, Mixpanel's api_secret, …) go in
    # `options`; the shared ones are fields of their own.
    common = {f.name for f in dataclasses.fields(integrations.IntegrationInput)}
    options = {k: fields.pop(k) for k in list(fields) if k not in common}
    data = integrations.IntegrationInput(
        api_key=str(fields.pop("api_key", f"{kind}-key")),
        base_url=base_url,
        options=options,
        given=frozenset({"api_key", "base_url", *fields}),
        **fields,  # type: ignore[arg-type]
    )
    with state.units.write() as unit:
        config = integrations.create_integration(
            unit, env.principal, env.client_key, kind, data, allow_private=True
        )
        return config.id
