"""Every dashboard form that writes goes through the one change path, as the admin API does.

The script below posts each form the dashboard serves (its router is the list, so a new form
cannot be forgotten). A form that changes what an environment serves must leave an audit entry
with the record before and after, and a change record; every other write an audit entry,
except signing in and out and the segment tester, which store no configuration.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

from ensign.storage.db import Database
from ensign.storage.models import AuditLog, ChangeRecord
from ensign.web.dashboard.routes import router
from ensign.web.deps import AppState
from tests.conftest import Organisation
from tests.dashboard.conftest import Browser, Seeded

SERVED = "served"
AUDIT = "audit"
RULES = [
    {
        "type": "ALL",
        "rules": [
            {
                "type": "ANY",
                "conditions": [{"property": "plan", "operator": "EQUAL", "value": "gold"}],
            }
        ],
    }
]

# Forms that store no configuration: the session's own, a segment tried against traits, and
# a test event sent to a destination (tests/dashboard/test_webhook_form.py covers it; it waits
# for a delivery process).
NOT_CONFIGURATION = {
    "/sign-in",
    "/sign-out",
    "/environments/{env_id}/segments/{segment_id}/test",
    "/environments/{env_id}/integrations/{kind}/{integration_id}/test",
}


def _form_routes() -> set[str]:
    paths: set[str] = set()

    def walk(routes: list[Any]) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                walk(inner.routes)
            elif isinstance(route, APIRoute) and "POST" in route.methods:
                paths.add(route.path)

    walk(router.routes)
    return paths - NOT_CONFIGURATION


class Script:
    def __init__(self, browser: Browser, database: Database) -> None:
        self.browser = browser
        self.database = database
        self.called: set[str] = set()
        self.failures: list[str] = []

    def _counts(self) -> tuple[int, int]:
        with self.database.read_session() as session:
            return session.query(AuditLog).count(), session.query(ChangeRecord).count()

    def post(
        self, template: str, expect: str, data: dict[str, Any] | None = None, **ids: Any
    ) -> Any:
        self.called.add(template)
        audit_before, changes_before = self._counts()
        response = self.browser.post(template.format(**ids), data or {})
        # A form the dashboard accepts redirects (or, for a new key shown once, answers 201);
        # one it refuses renders its page again with an error status.
        if response.status_code not in (201, 303):
            self.failures.append(f"{template}: {response.status_code} (not accepted)")
            return response
        with self.database.read_session() as session:
            audit = [
                {"action": e.action, "before": e.before, "after": e.after}
                for e in session.query(AuditLog).order_by(AuditLog.id).offset(audit_before)
            ]
            changes = [
                list(r.changes)
                for r in session.query(ChangeRecord)
                .order_by(ChangeRecord.id)
                .offset(changes_before)
            ]
        if not audit:
            self.failures.append(f"{template}: no audit entry")
        if expect == SERVED:
            if not changes:
                self.failures.append(f"{template}: no change record")
            for entry in audit:
                if entry["action"] in ("UPDATED", "DELETED") and entry["before"] is None:
                    self.failures.append(f"{template}: audit entry without before")
                if entry["action"] in ("UPDATED", "CREATED") and entry["after"] is None:
                    self.failures.append(f"{template}: audit entry without after")
        return response


def _api(
    browser: Browser, organisation: Organisation, method: str, path: str, body: Any = None
) -> Any:
    response = browser.client.request(
        method, f"/api/v1/{path}", json=body, headers=organisation.headers
    )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def _run(script: Script, seeded: Seeded, organisation: Organisation) -> None:
    post = script.post
    browser = script.browser
    e, p = seeded.environment_id, seeded.project_id
    key = seeded.client_key

    def api(method: str, path: str, body: Any = None) -> Any:
        return _api(browser, organisation, method, path, body)

    # Projects, environments, tags and server keys.
    post("/projects", AUDIT, {"name": "Second"})
    second = next(r for r in api("GET", "projects/")["results"] if r["name"] == "Second")
    post("/projects/{project_id}/rename", AUDIT, {"name": "Third"}, project_id=second["id"])
    post(
        "/projects/{project_id}/environments",
        AUDIT,
        {"environment_name": "Dev"},
        project_id=second["id"],
    )
    post("/projects/{project_id}/tags", AUDIT, {"label": "team-a"}, project_id=p)
    tag = api("GET", f"projects/{p}/tags/")["results"][0]
    post("/projects/{project_id}/tags/{tag_id}/delete", SERVED, project_id=p, tag_id=tag["id"])
    post("/environments/{env_id}/rename", AUDIT, {"name": "Prod"}, env_id=e)
    post("/environments/{env_id}/server-keys", AUDIT, {"key_name": "backend"}, env_id=e)
    server_key = api("GET", f"environments/{key}/api-keys/")["results"][0]
    post(
        "/environments/{env_id}/server-keys/{key_id}/revoke",
        AUDIT,
        env_id=e,
        key_id=server_key["id"],
    )

    # Features, their states, options and settings.
    post(
        "/environments/{env_id}/features",
        SERVED,
        {"name": "fresh", "value_type": "string", "value": "hi"},
        env_id=e,
    )
    features = {
        f["name"]: f for f in api("GET", f"projects/{p}/features/?page_size=100")["results"]
    }
    fresh = features["fresh"]["id"]
    post(
        "/environments/{env_id}/features/{feature_id}/toggle",
        SERVED,
        {"enabled": "true"},
        env_id=e,
        feature_id=fresh,
    )
    post(
        "/environments/{env_id}/features/{feature_id}/state",
        SERVED,
        {"enabled": "on", "value_type": "string", "value": "there"},
        env_id=e,
        feature_id=fresh,
    )
    post(
        "/environments/{env_id}/features/{feature_id}/settings",
        SERVED,
        {"description": "a new flag"},
        env_id=e,
        feature_id=fresh,
    )
    post(
        "/environments/{env_id}/features/{feature_id}/options",
        SERVED,
        {"option_value_type": "string", "option_value": "red", "option_weight": "10"},
        env_id=e,
        feature_id=fresh,
    )
    option = api("GET", f"projects/{p}/features/{fresh}/mv-options/")["results"][0]
    post(
        "/environments/{env_id}/features/{feature_id}/options/{option_id}/delete",
        SERVED,
        env_id=e,
        feature_id=fresh,
        option_id=option["id"],
    )

    # Segments and segment overrides.
    post(
        "/environments/{env_id}/segments",
        SERVED,
        {
            "name": "vip",
            "groups": "1",
            "g0_count": "1",
            "g0_c0_property": "plan",
            "g0_c0_operator": "EQUAL",
            "g0_c0_value": "vip",
            "action": "save",
        },
        env_id=e,
    )
    segment = next(
        s for s in api("GET", f"projects/{p}/segments/")["results"] if s["name"] == "vip"
    )
    post(
        "/environments/{env_id}/segments/{segment_id}",
        SERVED,
        {
            "name": "vips",
            "groups": "1",
            "g0_count": "1",
            "g0_c0_property": "plan",
            "g0_c0_operator": "EQUAL",
            "g0_c0_value": "vip",
            "action": "save",
        },
        env_id=e,
        segment_id=segment["id"],
    )
    overrides = "/environments/{env_id}/features/{feature_id}/segment-overrides"
    post(
        overrides,
        SERVED,
        {
            "segment": str(segment["id"]),
            "override_enabled": "on",
            "override_value_type": "string",
            "override_value": "vip",
        },
        env_id=e,
        feature_id=fresh,
    )
    state_id = api("GET", f"features/feature-segments/?environment={e}&feature={fresh}")["results"][
        0
    ]["id"]
    post(
        overrides + "/{state_id}",
        SERVED,
        {
            f"override_{state_id}_enabled": "on",
            f"override_{state_id}_value_type": "string",
            f"override_{state_id}_value": "VIP",
        },
        env_id=e,
        feature_id=fresh,
        state_id=state_id,
    )
    # A second override, so that moving one swaps their order.
    other = api("POST", f"projects/{p}/segments/", {"name": "other", "rules": RULES})
    api(
        "POST",
        f"environments/{key}/features/{fresh}/create-segment-override/",
        {"segment": other["id"]},
    )
    order = [
        o["id"]
        for o in api("GET", f"features/feature-segments/?environment={e}&feature={fresh}")[
            "results"
        ]
    ]
    post(
        overrides + "/{state_id}/move",
        SERVED,
        {"direction": "down" if order[0] == state_id else "up"},
        env_id=e,
        feature_id=fresh,
        state_id=state_id,
    )
    post(overrides + "/{state_id}/delete", SERVED, env_id=e, feature_id=fresh, state_id=state_id)
    post(
        "/environments/{env_id}/segments/{segment_id}/delete",
        SERVED,
        env_id=e,
        segment_id=segment["id"],
    )

    # Identities, traits and identity overrides.
    post("/environments/{env_id}/identities", SERVED, {"identifier": "zoe"}, env_id=e)
    zoe = api("GET", f"environments/{key}/identities/?q=zoe")["results"][0]["id"]
    post(
        "/environments/{env_id}/identities/{identity_id}/traits",
        SERVED,
        {"trait_key": "plan", "trait_value": "gold"},
        env_id=e,
        identity_id=zoe,
    )
    trait = api("GET", f"environments/{key}/identities/{zoe}/traits/")["results"][0]
    post(
        "/environments/{env_id}/identities/{identity_id}/traits/{trait_id}/delete",
        SERVED,
        env_id=e,
        identity_id=zoe,
        trait_id=trait["id"],
    )
    post(
        "/environments/{env_id}/identities/{identity_id}/overrides",
        SERVED,
        {"feature": str(fresh), "enabled": "on", "value_type": "string", "value": "zoe"},
        env_id=e,
        identity_id=zoe,
    )
    override = api("GET", f"environments/{key}/identities/{zoe}/featurestates/")["results"][0]
    o = override["id"]
    post(
        "/environments/{env_id}/identities/{identity_id}/overrides/{state_id}",
        SERVED,
        {
            f"override_{o}_enabled": "on",
            f"override_{o}_value_type": "string",
            f"override_{o}_value": "ZOE",
        },
        env_id=e,
        identity_id=zoe,
        state_id=o,
    )
    post(
        "/environments/{env_id}/identities/{identity_id}/overrides/{state_id}/delete",
        SERVED,
        env_id=e,
        identity_id=zoe,
        state_id=o,
    )
    post(
        "/environments/{env_id}/identities/{identity_id}/delete", SERVED, env_id=e, identity_id=zoe
    )

    # Experiments, on the seed's multivariate feature.
    multivariate = next(
        f
        for f in features.values()
        if api("GET", f"projects/{p}/features/{f['id']}/mv-options/")["count"]
    )["id"]
    running = api("GET", f"environments/{key}/experiments/")["results"]
    for experiment in running:
        api("DELETE", f"environments/{key}/experiments/{experiment['id']}/")
    post(
        "/environments/{env_id}/features/{feature_id}/experiments",
        SERVED,
        {"experiment_name": "colours"},
        env_id=e,
        feature_id=multivariate,
    )
    experiment = api("GET", f"environments/{key}/experiments/")["results"][0]
    post(
        "/environments/{env_id}/experiments/{experiment_id}/stop",
        SERVED,
        env_id=e,
        experiment_id=experiment["id"],
    )
    post(
        "/environments/{env_id}/experiments/{experiment_id}/start",
        SERVED,
        env_id=e,
        experiment_id=experiment["id"],
    )

    # Integrations and cohort sync: audited, no flag changes.
    post(
        "/environments/{env_id}/integrations/{kind}",
        AUDIT,
        {"api_key": "k", "enabled": "on"},
        env_id=e,
        kind="heap",
    )
    heap = api("GET", f"environments/{key}/integrations/heap/")[0]
    post(
        "/environments/{env_id}/integrations/{kind}/{integration_id}",
        AUDIT,
        {"api_key": "k2", "enabled": ""},
        env_id=e,
        kind="heap",
        integration_id=heap["id"],
    )
    post(
        "/environments/{env_id}/integrations/{kind}/{integration_id}/delete",
        AUDIT,
        env_id=e,
        kind="heap",
        integration_id=heap["id"],
    )
    post("/environments/{env_id}/cohorts/keys", AUDIT, {"key_name": "mixpanel"}, env_id=e)
    sync_key = api("GET", f"environments/{key}/cohort-sync-keys/")["results"][0]
    post(
        "/environments/{env_id}/cohorts/keys/{key_id}/revoke",
        AUDIT,
        env_id=e,
        key_id=sync_key["id"],
    )
    post("/environments/{env_id}/cohorts/member-mapping", AUDIT, {"member_key": "email"}, env_id=e)

    # Deletes last.
    post("/environments/{env_id}/features/{feature_id}/delete", SERVED, env_id=e, feature_id=fresh)
    dev = api("GET", f"environments/?project={second['id']}")["results"][0]
    post("/environments/{env_id}/delete", AUDIT, env_id=dev["id"])
    post("/projects/{project_id}/delete", AUDIT, project_id=second["id"])


def test_write_routes__every_dashboard_form__goes_through_the_change_path(
    signed_in: Browser, seeded: Seeded, organisation: Organisation, state: AppState
) -> None:
    script = Script(signed_in, state.db)
    _run(script, seeded, organisation)
    routes = _form_routes()
    assert not script.failures, "\n".join(script.failures)
    assert routes - script.called == set(), "forms this script does not post"
    assert script.called - routes == set(), "forms the script names that do not exist"
