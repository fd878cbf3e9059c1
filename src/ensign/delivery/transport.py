"""The vendors' HTTP transport: every connection goes to an address checked after DNS.

Checking a `base_url` when it is saved is not enough: a name can resolve to a public address
then and to 127.0.0.1 a minute later (DNS rebinding), and an integration saved while private
destinations were allowed keeps its URL after the setting is turned off. So each new
connection resolves the host itself, refuses it unless every address is allowed, and connects
to a checked address. TLS still verifies and names (SNI) the URL's host, and the Host header is
the URL's: httpcore takes both from the request, never from the socket.

A refused destination gets no connection attempt at all, and network failures are recorded
with generic messages, so the attempt log cannot be used to tell an open internal port from a
closed one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Iterable

import httpcore
import httpx

from ensign.integrations.base import DeliveryOutcome, Outcome
from ensign.services.destinations import Resolver, is_allowed_address, resolve_host

REFUSED_MESSAGE = "destination not allowed"
# Retrying cannot help: the destination stays refused until its URL or the setting changes.
REFUSED = DeliveryOutcome(Outcome.FAILED, None, REFUSED_MESSAGE)
UNRESOLVED_MESSAGE = "the host name did not resolve"
FAILED_MESSAGE = "network error: the request did not complete"


class DestinationRefused(httpx.TransportError):
    """The destination is not https to a globally routable address, and private
    destinations are not allowed."""


class UnresolvedHost(httpx.ConnectError):
    pass


def network_error_message(error: httpx.HTTPError, timeout_seconds: float) -> str:
    """What the attempt log says about a request that got no answer: only its kind, never
    the operating system's words (refused, reset, unreachable, certificate details)."""
    if isinstance(error, httpx.TimeoutException):
        return f"timed out after {timeout_seconds:g} seconds"
    if isinstance(error, UnresolvedHost):
        return UNRESOLVED_MESSAGE
    return FAILED_MESSAGE


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to allowed addresses of the host asked for."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: Resolver = resolve_host,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._backend = backend or httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        try:
            # getaddrinfo blocks: off the event loop, which also serves flag requests.
            found = await asyncio.to_thread(self._resolve, host, port)
        except (OSError, UnicodeError):
            raise UnresolvedHost(UNRESOLVED_MESSAGE) from None
        addresses = list(dict.fromkeys(found))
        if not addresses:
            raise UnresolvedHost(UNRESOLVED_MESSAGE)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port)
        # Every address, not just the one used: a resolver answering one public and one
        # internal address would otherwise reach the internal one on a retry.
        if not self._allow_private and not all(is_allowed_address(a) for a in addresses):
            raise DestinationRefused(REFUSED_MESSAGE)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused(REFUSED_MESSAGE)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class DestinationTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over `CheckedBackend`; plain http only when private destinations
    are allowed."""

    def __init__(
        self,
        *,
        allow_private: bool,
        limits: httpx.Limits,
        resolve: Resolver = resolve_host,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify)
        super().__init__(verify=ssl_context, limits=limits)
        self._allow_private = allow_private
        # httpx does not take a network backend: its pool is replaced by one with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(allow_private=allow_private, resolve=resolve),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https" and not self._allow_private:
            raise DestinationRefused(REFUSED_MESSAGE, request=request)
        return await super().handle_async_request(request)
