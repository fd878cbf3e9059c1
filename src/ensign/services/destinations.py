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

# What is not globally reachable, from IANA's IPv4 and IPv6 special-purpose address registries
# (and multicast, which reaches no single server). Kept here rather than read from
# `ipaddress`'s `is_global`, whose table differs between Python versions (3.11.7 calls
# 192.0.0.8 global), so that the rule is the same wherever Ensign runs.
_NOT_GLOBAL_IPV4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT, cloud metadata)
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments (but see _GLOBAL_IPV4)
        "192.0.2.0/24",
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
# The registry's globally reachable exceptions inside 192.0.0.0/24: PCP and TURN anycast.
_GLOBAL_IPV4 = frozenset(ipaddress.IPv4Address(a) for a in ("192.0.0.9", "192.0.0.10"))
# IPv6 is unicast-routable only within 2000::/3; inside it, these are not global.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NOT_GLOBAL_IPV6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
# IPv6 forms that carry an IPv4 address in their last 32 bits and deliver to it, so that the
# IPv4 address alone decides: IPv4-mapped (::ffff:0:0/96, what a dual-stack socket connects
# to), IPv4-translated (::ffff:0:0:0/96, RFC 2765), the deprecated IPv4-compatible form
# (::/96, RFC 4291, `::` and `::1` among them) and NAT64's well-known prefix (64:ff9b::/96,
# RFC 6052). NAT64's local-use prefix (64:ff9b:1::/48) is outside 2000::/3, so never global.
_CARRYING_IPV4 = tuple(
    ipaddress.IPv6Network(n) for n in ("::ffff:0:0/96", "::ffff:0:0:0/96", "::/96", "64:ff9b::/96")
)
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address really connects to, through a dual-stack socket, a
    translator or a 6to4 tunnel; None for a plain IPv6 address."""
    if any(address in network for network in _CARRYING_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour if address in _SIX_TO_FOUR else None


def _is_global_ipv4(address: ipaddress.IPv4Address) -> bool:
    if address in _GLOBAL_IPV4:
        return True
    return not any(address in network for network in _NOT_GLOBAL_IPV4)


def is_allowed_address(address: str | IPAddress) -> bool:
    """Whether an address is globally reachable, and so is any IPv4 address it carries: the
    one rule of both the save-time check (`check_base_url`) and the dispatcher's check at
    every connection (`delivery.transport`).

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
    if isinstance(address, ipaddress.IPv4Address):
        return _is_global_ipv4(address)
    # A scoped address (fe80::1%eth0) is link-local whatever its digits.
    if address.scope_id is not None:
        return False
    carried = carried_ipv4(address)
    if carried is not None:
        return _is_global_ipv4(carried)
    if address not in _GLOBAL_UNICAST:
        return False
    return not any(address in network for network in _NOT_GLOBAL_IPV6)


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
    # A control character (CR, LF, NUL, ...) inside a URL is no address any client can send
    # to: httpx refuses the URL at every delivery, so it is refused here, once, instead.
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in url):
        raise _invalid("must not contain control characters (line breaks, tabs, NUL).")
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
