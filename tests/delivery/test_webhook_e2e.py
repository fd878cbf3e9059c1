"""The webhook destination end to end: the real `ensign serve`, the official Flagsmith SDK, and
the fake receiver on a socket checking every signature."""

from __future__ import annotations

import pytest
from flagsmith import Flagsmith

from ensign.services.importing import import_document
from ensign.web.deps import AppState
from tests.conftest import Organisation, ServerProcess, wait_for
from tests.documents import standard_document
from tests.fakes.fixtures import Connector, Env, Served
from tests.fakes.webhook import documented_verify
from tests.units import unit_session

pytestmark = pytest.mark.slow


def test_official_sdk__two_environments_and_an_outage__each_receiver_gets_its_signed_items(
    served: ServerProcess,
    state: AppState,
    organisation: Organisation,
    env: Env,
    vendors: Served,
    connect: Connector,
) -> None:
    # Given a second environment, and each sending to its own receiver with its own secret
    with state.units.write() as unit, unit_session(unit) as session:
        second = import_document(session, organisation.id, standard_document()).environment_key
    vendors.webhook.secrets.update({"a": "secret-of-a", "b": "secret-of-b"})
    for key, path in ((env.client_key, "a"), (second, "b")):
        connect(key, "webhook", url=f"{vendors.webhook_url}/{path}", secret=f"secret-of-{path}")
    # And the receiver down for its first three requests
    vendors.webhook.script.fail(2, 503).fail(1, 500, headers={"Retry-After": "0"})
    # When the SDK identifies users with traits in both environments
    first, other = (
        Flagsmith(environment_key=key, api_url=served.api_url) for key in (env.client_key, second)
    )
    served_flags = {
        "ann": first.get_identity_flags("ann", traits={"plan": "gold"}),
        "bob": first.get_identity_flags("bob", traits={"age": 12}),
        "cat": other.get_identity_flags("cat", traits={"age": 40, "plan": "free"}),
    }
    # Then after the outage each receiver has its users, once, with what the SDK was served
    wait_for(lambda: len(vendors.webhook.received("a")) == 2)
    wait_for(lambda: len(vendors.webhook.received("b")) == 1)
    items = {i["identity"]: i for path in "ab" for i in vendors.webhook.received(path)}
    assert {i["identity"] for i in vendors.webhook.received("b")} == {"cat"}
    assert items["ann"]["traits"] == {"plan": "gold"}
    assert items["ann"]["segments"] == ["gold_users"]
    assert items["bob"]["segments"] == []
    assert items["cat"]["traits"] == {"age": 40, "plan": "free"}
    assert items["cat"]["segments"] == ["adults"]
    for identity, flags in served_flags.items():
        assert items[identity]["type"] == "flags"
        assert items[identity]["flags"] == [
            {"feature": name, "enabled": flag.enabled, "value": flag.value}
            for name, flag in sorted(flags.flags.items())
        ]
    assert vendors.webhook.refused == []  # every signature held, each with its secret
    assert vendors.webhook.duplicates == 0
    assert len(vendors.webhook.requests) >= 5  # the three refused, then one per receiver
    # And the documented snippet accepts a received request only with its own secret
    verify = documented_verify()
    last = vendors.webhook.requests[-1]
    secret = f"secret-of-{last['path']}"
    assert verify(secret, last["body"], last["headers"]["x-ensign-signature"]) is True
    wrong = "secret-of-a" if secret.endswith("b") else "secret-of-b"
    assert verify(wrong, last["body"], last["headers"]["x-ensign-signature"]) is False
