"""One rule for where Ensign may send: the check when an integration is saved and the
dispatcher's check at every connection give the same answer for every address, literal or
resolved from a name."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpcore
import pytest

from ensign.delivery.transport import CheckedBackend, DestinationRefused
from ensign.errors import InvalidInput
from ensign.services.destinations import check_base_url

# (address, globally reachable)
ADDRESSES = [
    ("192.0.0.8", False),  # IETF protocol assignments: the IPv4 dummy address
    ("192.0.0.1", False),
    ("192.0.0.9", True),  # PCP anycast: the registry's global exception
    ("::ffff:0:7f00:1", False),  # IPv4-translated 127.0.0.1
    ("::ffff:0:a9fe:a9fe", False),  # IPv4-translated 169.254.169.254
    ("::ffff:127.0.0.1", False),  # IPv4-mapped
    ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
    ("64:ff9b:1::808:808", False),  # NAT64 local-use prefix
    ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
    ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
    ("2001::7f00:1", False),  # Teredo
    ("100.64.0.1", False),
    ("169.254.1.1", False),
    ("0.0.0.0", False),
    ("::", False),
    ("::1", False),
    ("fc00::1", False),
    ("fe80::1", False),
    ("fec0::1", False),
    ("ff02::1", False),
    ("2001:db8::1", False),
    ("3fff::1", False),  # documentation (RFC 9637)
    ("100::1", False),  # discard-only
    ("5f00::1", False),  # SRv6 SIDs: outside global unicast
    ("192.88.99.1", False),  # deprecated 6to4 relay anycast
    ("198.18.0.1", False),
    ("240.0.0.1", False),
    ("255.255.255.255", False),
    ("224.0.0.1", False),
    ("8.8.8.8", True),
    ("93.184.216.34", True),
    ("2001:4860:4860::8888", True),
    ("::ffff:8.8.8.8", True),
    ("::ffff:0:808:808", True),
    ("64:ff9b::808:808", True),
    ("2002:808:808::1", True),
]


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def saved(url: str, resolved: str | None = None) -> bool:
    """Whether the admin API's check takes `url`."""
    try:
        check_base_url(
            url, allow_private=False, resolve=lambda _host, _port: [resolved or "192.0.2.1"]
        )
    except InvalidInput:
        return False
    return True


class Unreachable(httpcore.AsyncNetworkBackend):
    """A network where every connection fails: records the addresses tried."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.tried.append(host)
        raise httpcore.ConnectError("unreachable")


def connected(host: str, resolved: str | None = None) -> bool:
    """Whether the dispatcher's check lets a connection to `host` be tried."""
    network = Unreachable()
    backend = CheckedBackend(
        allow_private=False,
        resolve=lambda _host, _port: [resolved or "192.0.2.1"],
        backend=network,
    )
    try:
        asyncio.run(backend.connect_tcp(host, 443))
    except DestinationRefused:
        assert network.tried == []
        return False
    except httpcore.ConnectError:
        return True
    raise AssertionError("the unreachable network connected")


@pytest.mark.parametrize(("address", "reachable"), ADDRESSES)
def test_address_rule__literal__save_and_connection_checks_agree(
    address: str, reachable: bool
) -> None:
    assert saved(f"https://{_url_host(address)}/") is reachable
    assert connected(address) is reachable


@pytest.mark.parametrize(("address", "reachable"), ADDRESSES)
def test_address_rule__resolved_from_a_name__save_and_connection_checks_agree(
    address: str, reachable: bool
) -> None:
    assert saved("https://vendor.example/", resolved=address) is reachable
    assert connected("vendor.example", resolved=address) is reachable
