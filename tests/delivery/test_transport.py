"""Destinations checked at connection time, with a resolver the tests control.

`tests/fakes/tls/` holds a test CA and a certificate for `vendor.example` signed by it (valid
until 2126; the CA's key was discarded), so a fake vendor can be reached over TLS under a name
that resolves, here, to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ensign.delivery.transport import DestinationRefused, DestinationTransport
from ensign.services import integrations
from ensign.storage.pagination import Window
from ensign.web.app import create_app
from ensign.web.deps import AppState
from tests.delivery.dispatching import deliver
from tests.fakes.fixtures import Env, Served, configure
from tests.fakes.heap import FakeHeap
from tests.fakes.script import ServedApp, free_port

TLS = Path(__file__).resolve().parent.parent / "fakes" / "tls"
PUBLIC = "93.184.216.34"


def resolver(names: dict[str, str]) -> Callable[[str, int], Sequence[str]]:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [names[host]]

    return resolve


@pytest.fixture
def sdk(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as client:
        yield client


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """An open port on 127.0.0.1 that counts as a connection whatever reaches it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield sock


def was_connected(sock: socket.socket) -> bool:
    try:
        connection, _ = sock.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def identify(sdk: TestClient, env: Env) -> None:
    response = sdk.get(
        "/api/v1/identities/?identifier=user-1", headers={"X-Environment-Key": env.client_key}
    )
    assert response.status_code == 200


def attempts(state: AppState, env: Env, kind: str, integration_id: int) -> list[tuple[object, ...]]:
    with state.units.read() as unit:
        found = integrations.delivery_attempts(
            unit, env.principal, env.client_key, kind, integration_id, Window(0, 100)
        )
        return [(a.outcome, a.status_code, a.response, a.error) for a in found.items]


def create(
    state: AppState, env: Env, kind: str, base_url: str, resolve: Callable[..., Sequence[str]]
) -> int:
    data = integrations.IntegrationInput(
        api_key="key", base_url=base_url, given=frozenset({"api_key", "base_url"})
    )
    with state.units.write() as unit:
        config = integrations.create_integration(
            unit, env.principal, env.client_key, kind, data, allow_private=False, resolve=resolve
        )
        return config.id


def test_dispatcher__name_rebound_to_loopback__refused_without_connecting(
    state: AppState, env: Env, sdk: TestClient, listener: socket.socket
) -> None:
    # Given a name that resolved to a public address when the integration was saved
    port = listener.getsockname()[1]
    heap_id = create(
        state, env, "heap", f"https://rebind.example:{port}", resolver({"rebind.example": PUBLIC})
    )
    identify(sdk, env)
    # When it resolves to 127.0.0.1 at send time
    deliver(
        state,
        lambda: bool(attempts(state, env, "heap", heap_id)),
        allow_private=False,
        resolve=resolver({"rebind.example": "127.0.0.1"}),
    )
    # Then the delivery fails for good, says why, and nothing connected to the port
    assert attempts(state, env, "heap", heap_id) == [
        ("failed", None, None, "destination not allowed")
    ]
    with state.units.read() as unit:
        status = integrations.delivery_status(unit, env.principal, env.client_key, "heap", heap_id)
    assert (status.failed, status.pending, status.retrying) == (1, 0, 0)
    assert not was_connected(listener)


def test_dispatcher__saved_while_private_allowed__stops_when_setting_off(
    state: AppState, env: Env, sdk: TestClient, vendors: Served
) -> None:
    # Given integrations saved while private destinations were allowed: one to an open port
    # (a working fake vendor), one to a closed port
    heap_id = configure(state, env, "heap", vendors.heap_url)
    mixpanel_id = configure(state, env, "mixpanel", f"http://127.0.0.1:{free_port()}")
    identify(sdk, env)
    # When the setting is off
    deliver(
        state,
        lambda: bool(attempts(state, env, "heap", heap_id))
        and bool(attempts(state, env, "mixpanel", mixpanel_id)),
        allow_private=False,
    )
    # Then nothing is sent, and the attempt log cannot tell the open port from the closed one
    refused = [("failed", None, None, "destination not allowed")]
    assert attempts(state, env, "heap", heap_id) == refused
    assert attempts(state, env, "mixpanel", mixpanel_id) == refused
    assert vendors.heap.requests == []


def test_dispatcher__network_failures__recorded_without_their_details(
    state: AppState, env: Env, sdk: TestClient, vendors: Served
) -> None:
    # Given private destinations allowed: TLS to a plain-http server, and a closed port
    heap_id = configure(state, env, "heap", vendors.heap_url.replace("http:", "https:"))
    mixpanel_id = configure(state, env, "mixpanel", f"http://127.0.0.1:{free_port()}")
    identify(sdk, env)
    # When
    deliver(
        state,
        lambda: bool(attempts(state, env, "heap", heap_id))
        and bool(attempts(state, env, "mixpanel", mixpanel_id)),
        allow_private=True,
    )
    # Then both read the same, without the operating system's or TLS library's words
    generic = ("retry", None, None, "network error: the request did not complete")
    assert attempts(state, env, "heap", heap_id)[-1] == generic
    assert attempts(state, env, "mixpanel", mixpanel_id)[-1] == generic


def test_dispatcher__name_resolved_to_loopback_with_private_allowed__delivered(
    state: AppState, env: Env, sdk: TestClient, vendors: Served
) -> None:
    port = vendors.heap_url.rsplit(":", 1)[1]
    heap_id = configure(state, env, "heap", f"http://vendor.example:{port}")
    identify(sdk, env)
    deliver(
        state,
        lambda: len(vendors.heap.events) == 1,
        allow_private=True,
        resolve=resolver({"vendor.example": "127.0.0.1"}),
    )
    assert vendors.heap.events[0]["identity"] == "user-1"
    assert vendors.heap.requests[0]["headers"]["host"] == f"vendor.example:{port}"
    assert attempts(state, env, "heap", heap_id)[0][:2] == ("delivered", 200)


@pytest.fixture
def tls_heap() -> Iterator[tuple[FakeHeap, int]]:
    heap = FakeHeap()
    served = ServedApp(
        heap.app, certfile=str(TLS / "vendor.pem"), keyfile=str(TLS / "vendor-key.pem")
    )
    served.start()
    yield heap, served.port
    served.stop()


def post(transport: DestinationTransport, url: str) -> httpx.Response:
    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.post(url, json={"app_id": "1", "identity": "a", "event": "e"})

    return asyncio.run(run())


def test_transport__name_resolved_by_us__tls_verifies_and_names_the_original_host(
    tls_heap: tuple[FakeHeap, int],
) -> None:
    # Given a certificate valid for vendor.example only, served on 127.0.0.1
    heap, port = tls_heap
    trusted = ssl.create_default_context(cafile=str(TLS / "ca.pem"))
    transport = DestinationTransport(
        allow_private=True,
        resolve=resolver({"vendor.example": "127.0.0.1"}),
        limits=httpx.Limits(),
        verify=trusted,
    )
    # When
    response = post(transport, f"https://vendor.example:{port}/api/track")
    # Then the handshake checked the certificate against the name, not the address
    assert response.status_code == 200
    assert heap.requests[0]["headers"]["host"] == f"vendor.example:{port}"


def test_transport__private_not_allowed__refused_before_connecting(
    tls_heap: tuple[FakeHeap, int],
) -> None:
    heap, port = tls_heap
    transport = DestinationTransport(
        allow_private=False,
        resolve=resolver({"vendor.example": "127.0.0.1"}),
        limits=httpx.Limits(),
        verify=ssl.create_default_context(cafile=str(TLS / "ca.pem")),
    )
    with pytest.raises(DestinationRefused, match="destination not allowed"):
        post(transport, f"https://vendor.example:{port}/api/track")
    with pytest.raises(DestinationRefused):
        post(transport, f"https://[2002:7f00:1::1]:{port}/api/track")
    assert heap.requests == []
