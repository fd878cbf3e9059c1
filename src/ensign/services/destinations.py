"""Where Ensign may send analytics: https URLs whose host is a globally routable address.

The rule is applied twice: when an integration's `base_url` is saved, for a clear error, and by
the dispatcher's transport at every connection, to the address DNS gives then (a name can
resolve to a public address when saved and to 127.0.0.1 later). Without the rule, anyone who
may configure an integration could make the server post to its own internal network or to a
cloud metadata service.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from ensign.errors import InvalidInput

SETTING = "ENSIGN_ALLOW_PRIVATE_DESTINATIONS"

Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges that carry an IPv4 address in their last 32 bits and deliver to it: NAT64's
# well-known prefix (RFC 6052), its local-use prefix (RFC 8215) and the deprecated
# IPv4-compatible form (RFC 4291 §2.5.5.1). IPv4-mapped, 6to4 and Teredo have their own
# accessors on `IPv6Address`.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address reaches through a translator, tunnel or dual-stack
    socket: what such an address really connects to."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64 or address in _LOCAL_NAT64 or address in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def _is_global(address: IPAddress) -> bool:
    # `is_global` follows IANA's special-purpose registries (shared address space 100.64/10,
    # loopback, link-local, private, documentation, ...); multicast and IPv6 site-local are
    # not routable to a single server either.
    if address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return False
    return address.is_global


def is_allowed_address(address: str | IPAddress) -> bool:
    """Whether an address is globally routable, and so is any IPv4 address it carries.

    >>> is_allowed_address("8.8.8.8"), is_allowed_address("100.100.100.200")
    (True, False)
    >>> is_allowed_address("2002:7f00:1::1")  # 6to4 form of 127.0.0.1
    False
    """
    if isinstance(address, str):
        try:
            address = ipaddress.ip_address(address)
        except ValueError:
            return False
    if isinstance(address, ipaddress.IPv6Address):
        if address in _LOCAL_NAT64:
            return False
        embedded = embedded_ipv4(address)
        # An IPv4-mapped address is its IPv4 address; Python versions disagree on whether the
        # mapped range itself is global, so only the embedded address decides.
        if address.ipv4_mapped is None and not _is_global(address):
            return False
        return all(_is_global(ipv4) for ipv4 in embedded)
    return _is_global(address)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(f"base_url: {message}", field="base_url")


def check_base_url(url: str, *, allow_private: bool, resolve: Resolver = resolve_host) -> str:
    """A destination URL, refused unless https with a host that resolves only to globally
    routable addresses (analytics-apis.md §5); answers it without a trailing slash."""
    url = url.strip()
    if "://" not in url:
        raise _invalid("must start with https:// (no scheme was given).")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _invalid("not a valid URL.") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise _invalid("must use https.")
    if not parts.hostname:
        raise _invalid("a host is required.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise _invalid("must not carry credentials, a query or a fragment.")
    if allow_private:
        return url.rstrip("/")
    host = parts.hostname
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = list(resolve(host, port or 443))
        except (OSError, UnicodeError):
            raise _invalid("the host name does not resolve.") from None
    if not addresses or not all(is_allowed_address(a) for a in addresses):
        raise _invalid(
            "must resolve only to public addresses, not to private, loopback, link-local or "
            "shared ones. To send to such an address in local development, set "
            f"{SETTING}=true."
        )
    return url.rstrip("/")
