"""The destination rules: which addresses and URLs an integration may send to."""

from __future__ import annotations

import pytest

from ensign.errors import InvalidInput
from ensign.services.destinations import check_base_url, is_allowed_address

REFUSED = [
    # IPv4 special-purpose ranges
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.5",
    "169.254.169.254",
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "100.100.100.200",  # a cloud metadata address, inside the shared address space
    "0.0.0.0",
    "192.0.2.1",
    "198.18.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "224.0.0.1",
    # IPv6 special-purpose ranges
    "::1",
    "::",
    "fe80::1",
    "fd00::1",
    "fec0::1",
    "2001:db8::1",
    "ff0e::1",
    # 6to4 (2002::/16) carrying loopback, link-local, private and shared addresses
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::1",
    "2002:a00:1::1",
    "2002:6440:1::1",
    # NAT64: the well-known prefix translates to its IPv4 address; local-use is never global
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::6464:64c8",
    "64:ff9b:1::808:808",
    # IPv4-mapped
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:100.64.0.1",
    # IPv4-compatible (deprecated)
    "::7f00:1",
    "::a9fe:a9fe",
    # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001::7f00:1",
]

ALLOWED = [
    "8.8.8.8",
    "93.184.216.34",
    "2001:4860:4860::8888",
    "64:ff9b::808:808",
    "::ffff:8.8.8.8",
]


@pytest.mark.parametrize("address", REFUSED)
def test_is_allowed_address__not_globally_routable__refused(address: str) -> None:
    assert is_allowed_address(address) is False


@pytest.mark.parametrize("address", ALLOWED)
def test_is_allowed_address__globally_routable__allowed(address: str) -> None:
    assert is_allowed_address(address) is True


def test_is_allowed_address__not_an_address__refused() -> None:
    assert is_allowed_address("vendor.example") is False


@pytest.mark.parametrize(
    "url",
    [
        "https://100.64.0.1",
        "https://100.100.100.200/latest/meta-data",
        "https://[2002:7f00:1::1]",
        "https://[2002:a9fe:a9fe::1]:8443",
        "https://[64:ff9b::7f00:1]",
        "https://[::ffff:127.0.0.1]",
    ],
)
def test_check_base_url__literal_not_global__refused_naming_the_setting(url: str) -> None:
    with pytest.raises(InvalidInput, match="ENSIGN_ALLOW_PRIVATE_DESTINATIONS=true"):
        check_base_url(url, allow_private=False)


def test_check_base_url__one_of_the_names_addresses_internal__refused() -> None:
    with pytest.raises(InvalidInput, match="public addresses"):
        check_base_url(
            "https://mixed.example",
            allow_private=False,
            resolve=lambda host, port: ["93.184.216.34", "100.100.100.200"],
        )


def test_check_base_url__no_scheme__says_so() -> None:
    with pytest.raises(InvalidInput) as raised:
        check_base_url("api.mixpanel.com", allow_private=False)
    assert raised.value.detail == "base_url: must start with https:// (no scheme was given)."


def test_check_base_url__private_allowed__shared_address_accepted() -> None:
    assert check_base_url("https://100.64.0.1/", allow_private=True) == "https://100.64.0.1"
