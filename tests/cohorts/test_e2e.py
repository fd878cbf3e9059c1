"""End to end: Mixpanel syncs a cohort into a real `ensign serve`, and the official Flagsmith
SDK sees a segment override on the cohort's segment for members only."""

from __future__ import annotations

import httpx
import pytest
from flagsmith import Flagsmith

from ensign.web.deps import AppState
from tests.cohorts.conftest import Sync, create_key, envelope, make_env, members
from tests.conftest import Organisation, ServerProcess, wait_for

pytestmark = pytest.mark.slow


def test_official_sdk__cohort_segment_override__members_only_and_flips_back(
    server: ServerProcess, state: AppState, organisation: Organisation
) -> None:
    # Given: an environment, a cohort-sync key, and a cohort synced by "Mixpanel"
    env = make_env(state, organisation)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        sync = Sync(client, state, organisation, env, create_key(client, organisation, env))
        sync.ok(envelope("members", members("alice", "bob"), session="s1", page=1, total=2))
        sync.ok(envelope("members", members("carol"), session="s1", page=2, total=2))
        [cohort] = sync.admin("GET", "cohorts/").json()["results"]
        # And: a segment override on the cohort's managed segment
        sync.override_for_segment("banner", cohort["segment"], "for cohort")
        flagsmith = Flagsmith(environment_key=env.client_key, api_url=server.api_url)

        # Then: members get the override, others the default
        for identifier in ("alice", "bob", "carol"):
            flags = flagsmith.get_identity_flags(identifier)
            assert flags.get_feature_value("banner") == "for cohort", identifier
        assert flagsmith.get_identity_flags("dave").get_feature_value("banner") == "hello"

        # When: bob leaves the cohort
        sync.ok(envelope("remove_members", members("bob"), session="s2"))
        # Then: bob is back to the default, at once (traits are read per request)
        assert flagsmith.get_identity_flags("bob").get_feature_value("banner") == "hello"
        assert flagsmith.get_identity_flags("alice").get_feature_value("banner") == "for cohort"

        # When: the cohort is renamed in Mixpanel
        sync.ok(envelope("add_members", members("dave"), name="Renamed", session="s3"))
        wait_for(
            lambda: flagsmith.get_identity_flags("dave").get_feature_value("banner")
            == "for cohort",
            timeout=5,
        )
        segment = client.get(
            f"/api/v1/projects/{env.project_id}/segments/{cohort['segment']}/",
            headers=organisation.headers,
        ).json()
        assert segment["name"] == "Mixpanel cohort: Renamed"
