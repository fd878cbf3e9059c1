"""Every destination's request builder (`vendors/<kind>/requests.py`), by kind, for each
settings schema in the catalog: loaded by name, so that the catalog stays the one list of
destinations while the request path, which imports it, loads no request code."""

from __future__ import annotations

from importlib import import_module

from ensign.integrations import vendors
from ensign.integrations.base import Destination
from ensign.integrations.catalog import SCHEMAS


def _load(kind: str) -> Destination:
    destination: Destination = import_module(f"{vendors.__name__}.{kind}.requests").DESTINATION
    if destination.kind != kind:
        raise RuntimeError(f"vendors/{kind}/requests.py sends for {destination.kind!r}")
    return destination


DESTINATIONS: dict[str, Destination] = {kind: _load(kind) for kind in SCHEMAS}
