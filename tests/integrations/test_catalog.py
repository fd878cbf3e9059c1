"""The destination catalog: one settings schema per vendor module, and the admin API built
from it validating each vendor's own options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ensign.delivery.destinations import DESTINATIONS
from ensign.integrations import vendors
from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.common import DEFAULTS
from ensign.integrations.schema import BOOL
from ensign.storage.models import IntegrationConfig
from tests.conftest import Organisation
from tests.fakes.fixtures import Env

BASE = "/api/v1/environments/{key}/integrations/{kind}/"


def test_catalog__every_schema_has_a_vendor_module_and_back() -> None:
    assert set(SCHEMAS) == set(DESTINATIONS)
    for kind, destination in DESTINATIONS.items():
        assert destination.kind == kind
        assert destination.max_batch > 0


def test_catalog__lists_every_vendor_package() -> None:
    packages = {p.parent.name for p in Path(vendors.__file__).parent.glob("*/schema.py")}
    assert packages == set(SCHEMAS)


def test_request_path__loads_no_vendor_request_code() -> None:
    # The import contracts see only import statements; this sees what a web process loads.
    script = (
        "import sys, ensign.web.app, ensign.services.integrations\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('ensign.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.split()
    assert "ensign.integrations.catalog" in loaded
    assert [m for m in loaded if m.endswith(".requests")] == []
    assert [
        m for m in loaded if m.startswith(("ensign.delivery", "ensign.integrations.base"))
    ] == []


@pytest.mark.parametrize(
    ("kind", "option"),
    [(s.kind, o) for s in SCHEMAS.values() for o in s.options],
    ids=lambda v: getattr(v, "name", v),
)
def test_admin__option_of_wrong_type__400_naming_it(
    client: TestClient, organisation: Organisation, env: Env, kind: str, option: object
) -> None:
    name = option.name  # type: ignore[attr-defined]
    wrong: object = "yes" if option.type == BOOL else 12  # type: ignore[attr-defined]
    body = {"api_key": "k", "base_url": "https://vendor.example", name: wrong}
    answer = client.post(
        BASE.format(key=env.client_key, kind=kind), headers=organisation.headers, json=body
    )
    assert answer.status_code == 400, answer.text
    assert name in answer.text


def test_admin__unknown_option__400(
    client: TestClient, organisation: Organisation, env: Env
) -> None:
    # Heap has no ignore_time (Mixpanel's): a typo or a wrong kind is refused, not dropped.
    answer = client.post(
        BASE.format(key=env.client_key, kind="heap"),
        headers=organisation.headers,
        json={"api_key": "k", "ignore_time": False},
    )
    assert answer.status_code == 400, answer.text
    assert "ignore_time" in answer.text


def test_admin__secret_option__write_only(
    client: TestClient, organisation: Organisation, env: Env
) -> None:
    created = client.post(
        BASE.format(key=env.client_key, kind="mixpanel"),
        headers=organisation.headers,
        json={"api_key": "token", "api_secret": "s3cret"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["api_secret_set"] is True
    assert "s3cret" not in created.text


@pytest.mark.parametrize(
    ("kind", "alias"),
    [(s.kind, a) for s in SCHEMAS.values() for a in s.aliases],
)
@pytest.mark.parametrize("wrong", [1, True, ["https://a.example"], {"url": "x"}])
def test_admin__alias_of_wrong_type__400_not_500(
    client: TestClient, organisation: Organisation, env: Env, kind: str, alias: str, wrong: object
) -> None:
    # A webhook's `url` is `base_url` under another name, and refused alike.
    body = {"api_key": "k", "secret": "s", alias: wrong}
    answer = client.post(
        BASE.format(key=env.client_key, kind=kind), headers=organisation.headers, json=body
    )
    assert answer.status_code == 400, answer.text
    assert alias in answer.text


def test_common_settings__storage_server_defaults__are_the_defaults() -> None:
    # Storage may not import `integrations.common`; rows written before a setting existed
    # get the column's server default, which must say the same.
    columns = IntegrationConfig.__table__.columns
    defaults = {name: columns[name].server_default for name in ("deliver", "resend_after_hours")}
    assert {name: getattr(d, "arg", None) for name, d in defaults.items()} == {
        "deliver": DEFAULTS.deliver,
        "resend_after_hours": str(DEFAULTS.resend_after_hours),
    }
