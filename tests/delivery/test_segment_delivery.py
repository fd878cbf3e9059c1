"""The dispatcher sending to the fake Segment and RudderStack on real sockets: outages and
rate limits, batches split by size, and a message too large for Segment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ensign.services.importing import import_document
from ensign.services.keys import AdminPrincipal
from ensign.web.app import create_app
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.delivery.test_worker import attempts_of, drive, expected_properties, identify, status_of
from tests.documents import document, feature_state
from tests.fakes.fixtures import Env, SegmentServed, configure
from tests.fakes.script import Answer
from tests.units import unit_session


@pytest.fixture
def sdk(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state)) as client:
        yield client


def test_dispatcher__outage_and_rate_limit__every_identity_arrives_once_with_its_traits(
    state: AppState, env: Env, segment_vendors: SegmentServed, sdk: TestClient
) -> None:
    # Given Segment down, then rate limiting, and RudderStack's data plane down for a while
    segment_id = configure(state, env, "segment", segment_vendors.segment_url)
    configure(state, env, "rudderstack", segment_vendors.rudderstack_url)
    segment, rudder = segment_vendors.segment, segment_vendors.rudderstack
    segment.script.fail(2, 503, body=b"unavailable").then(
        Answer(429, headers={"Retry-After": "0.5"})
    )
    rudder.script.fail(2, 500)
    bodies = [identify(sdk, env, i) for i in range(30)]
    expected = {b["identifier"]: expected_properties(b) for b in bodies}
    # When
    drive(state, lambda: len(segment.messages) >= 30 and len(rudder.messages) >= 30)
    # Then each identity's flags arrived once, as its traits, under the integration's write key
    for fake, key in ((segment, "segment-key"), (rudder, "rudderstack-key")):
        assert fake.identifies(key) == expected
        assert len(fake.messages) == 30
        assert fake.duplicates == 0
    # and the attempt log shows the outage, the rate limit and the wait it asked for
    codes = [a.status_code for a in reversed(attempts_of(state, env, "segment", segment_id))]
    assert codes[:4] == [503, 503, 429, 200]
    limited, after = segment.requests[2], segment.requests[3]
    assert after["at"] - limited["at"] >= 0.5
    assert status_of(state, env, "segment", segment_id).delivered == 30


def _environment(state: AppState, organisation: Organisation, blobs: int, size: int) -> Env:
    """A second environment whose flags hold `blobs` string values of `size` characters."""
    features = [feature_state(i + 1, f"blob{i}", value=chr(97 + i) * size) for i in range(blobs)]
    with state.units.write() as unit, unit_session(unit) as session:
        result = import_document(session, organisation.id, document(feature_states=features))
    principal = AdminPrincipal(organisation.id, 0, "tests")
    return Env(result.environment_key, result.server_key, result.environment_id, principal)


def _identify(sdk: TestClient, env: Env, identifier: str) -> None:
    response = sdk.get(
        f"/api/v1/identities/?identifier={identifier}",
        headers={"X-Environment-Key": env.client_key},
    )
    assert response.status_code == 200


def test_dispatcher__flags_of_30_kb__segment_batches_under_500_kb_rudderstack_one(
    state: AppState, organisation: Organisation, segment_vendors: SegmentServed, sdk: TestClient
) -> None:
    # Given flags taking 30 KB a user, and 40 users
    env = _environment(state, organisation, blobs=2, size=15_000)
    configure(state, env, "segment", segment_vendors.segment_url)
    configure(state, env, "rudderstack", segment_vendors.rudderstack_url)
    segment, rudder = segment_vendors.segment, segment_vendors.rudderstack
    for n in range(40):
        _identify(sdk, env, f"big-{n}")
    # When
    drive(state, lambda: len(segment.messages) == 40 and len(rudder.messages) == 40)
    # Then Segment received them in batches under its 500 KB, none refused, and RudderStack,
    # whose gateway takes 4000 KB, in one
    sizes = [len(r["body"]) for r in segment.requests]
    assert len(sizes) >= 3
    assert max(sizes) <= 500 * 1024
    assert len(rudder.requests) == 1
    traits = {"blob0": "a" * 15_000, "blob1": "b" * 15_000}
    assert segment.identifies() == {f"big-{n}": traits for n in range(40)}
    assert rudder.identifies() == segment.identifies()


def test_dispatcher__flags_over_32_kb__failed_at_segment_with_the_reason_sent_to_rudderstack(
    state: AppState, organisation: Organisation, segment_vendors: SegmentServed, sdk: TestClient
) -> None:
    env = _environment(state, organisation, blobs=3, size=12_000)
    segment_id = configure(state, env, "segment", segment_vendors.segment_url)
    configure(state, env, "rudderstack", segment_vendors.rudderstack_url)
    for n in range(3):
        _identify(sdk, env, f"huge-{n}")

    drive(
        state,
        lambda: (
            len(segment_vendors.rudderstack.messages) == 3
            and status_of(state, env, "segment", segment_id).failed == 3
        ),
    )

    assert segment_vendors.segment.requests == []
    status = status_of(state, env, "segment", segment_id)
    assert "Segment refuses messages over 32768 bytes" in (status.last_error or "")
