"""Every admin-API write route goes through the one change path.

The script below calls each write route the admin API documents (its OpenAPI document is the
list, so a new route cannot be forgotten: the last test fails until it is added here). A route
that changes what an environment serves must leave an audit entry with the record before and
after, and a change record (the durable record that history, review and announcements read)
in the environments it reached; every other write leaves an audit entry, except the few that
change nothing stored (listed with why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ensign.storage.db import Database
from ensign.storage.models import AuditLog, ChangeRecord
from tests.admin.conftest import Admin, World
from tests.documents import standard_document

SERVED = "served"
AUDIT = "audit"

# Surfaces that are not the admin API: the SDKs', OFREP and the cohort-sync receivers.
NOT_ADMIN_PREFIXES = (
    "/api/v1/identities/",
    "/api/v1/traits/",
    "/api/v1/analytics/",
    "/api/v1/events/",
    "/v1/events/",
    "/ofrep/",
    "/api/v1/cohort-sync/",
)

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


@dataclass
class Counts:
    audit: int
    changes: int


def _counts(database: Database) -> Counts:
    with database.read_session() as session:
        return Counts(
            audit=session.query(AuditLog).count(),
            changes=session.query(ChangeRecord).count(),
        )


def _new_rows(database: Database, since: Counts) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """The audit entries (action, before, after) and change records' changes added since."""
    with database.read_session() as session:
        audit = [
            {"action": e.action, "before": e.before, "after": e.after}
            for e in session.query(AuditLog).order_by(AuditLog.id).offset(since.audit)
        ]
        changes = [
            list(r.changes)
            for r in session.query(ChangeRecord).order_by(ChangeRecord.id).offset(since.changes)
        ]
        return audit, changes


class Script:
    """Calls routes in order, checking what each left behind."""

    def __init__(self, world: World, admin: Admin) -> None:
        self.world = world
        self.admin = admin
        self.called: set[tuple[str, str]] = set()
        self.failures: list[str] = []
        self.database = Database(world.url)

    def call(self, method: str, template: str, expect: str, body: Any = None, **ids: Any) -> Any:
        self.called.add((method, _shape(template)))
        path = template.format(**ids)
        before = _counts(self.database)
        response = self.admin.client.request(method, path, headers=self.admin.headers, json=body)
        where = f"{method} {template}"
        if response.status_code >= 300:
            self.failures.append(f"{where}: {response.status_code} {response.text[:200]}")
            return None
        audit, changes = _new_rows(self.database, before)
        if not audit:
            self.failures.append(f"{where}: no audit entry")
        if expect == SERVED:
            self._check_served(where, audit, changes)
        return response.json() if response.content else None

    def _check_served(
        self, where: str, audit: list[dict[str, Any]], changes: list[list[Any]]
    ) -> None:
        if not changes:
            self.failures.append(f"{where}: no change record")
            return
        for entry in audit:
            if entry["action"] in ("UPDATED", "DELETED") and entry["before"] is None:
                self.failures.append(f"{where}: audit entry without its record before")
            if entry["action"] in ("UPDATED", "CREATED") and entry["after"] is None:
                self.failures.append(f"{where}: audit entry without its record after")
        for record in changes:
            for change in record:
                if change["action"] in ("UPDATED", "DELETED") and change["before"] is None:
                    self.failures.append(f"{where}: change without before")
                if change["action"] != "DELETED" and change["after"] is None:
                    self.failures.append(f"{where}: change without after")


def _shape(template: str) -> str:
    """A path template with its parameters unnamed, so that `{k}` and `{api_key}` compare equal."""
    return re.sub(r"\{[^}]*\}", "{}", template)


def _admin_write_routes(admin: Admin) -> set[tuple[str, str]]:
    spec = admin.client.get("/api/v1/openapi.json").json()
    return {
        (method.upper(), _shape(path))
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
        and not path.startswith(NOT_ADMIN_PREFIXES)
        # Sending a destination a test event stores no configuration (and waits for a
        # delivery process): tests/integrations covers it.
        and not path.endswith("/test/")
    }


def _run(script: Script) -> None:
    call = script.call
    org = script.admin.organisation_id
    P = "/api/v1/projects/{p}/"
    E = "/api/v1/environments/{k}/"

    # The organisation and its keys: audit only.
    call("PUT", "/api/v1/organisations/{org_id}/", AUDIT, {"name": "Acme"}, org_id=org)
    call("PATCH", "/api/v1/organisations/{org_id}/", AUDIT, {"name": "Acme Inc"}, org_id=org)
    keys = "/api/v1/organisations/{org_id}/master-api-keys/"
    key = call("POST", keys, AUDIT, {"name": "ci"}, org_id=org)
    key_path = keys + "{key_id}/"
    call("PUT", key_path, AUDIT, {"name": "ci-2"}, org_id=org, key_id=key["id"])
    call("PATCH", key_path, AUDIT, {"name": "ci-3"}, org_id=org, key_id=key["id"])
    call("DELETE", key_path, AUDIT, org_id=org, key_id=key["id"])

    # A project with two environments.
    project = call("POST", "/api/v1/projects/", AUDIT, {"name": "Shop"})
    p = project["id"]
    call("PUT", P, AUDIT, {"name": "Store"}, p=p)
    call("PATCH", P, AUDIT, {"name": "Shop"}, p=p)
    env = call("POST", "/api/v1/environments/", AUDIT, {"name": "Production", "project": p})
    k = env["api_key"]
    call("POST", "/api/v1/environments/", AUDIT, {"name": "Staging", "project": p})
    call("PUT", E, AUDIT, {"name": "Prod"}, k=k)
    call("PATCH", E, SERVED, {"hide_disabled_flags": True}, k=k)
    call("PATCH", E, SERVED, {"hide_disabled_flags": False}, k=k)

    # Server keys: audit only.
    server_keys = E + "api-keys/"
    server_key = call("POST", server_keys, AUDIT, {"name": "backend"}, k=k)
    sk = server_keys + "{key_id}/"
    call("PUT", sk, AUDIT, {"name": "backend-2"}, k=k, key_id=server_key["id"])
    call("PATCH", sk, AUDIT, {"active": False}, k=k, key_id=server_key["id"])
    call("DELETE", sk, AUDIT, k=k, key_id=server_key["id"])

    # Features and their options: served in every environment of the project.
    features = P + "features/"
    banner = call("POST", features, SERVED, {"name": "banner", "initial_value": "hi"}, p=p)
    color = call("POST", features, SERVED, {"name": "color"}, p=p)
    doomed = call("POST", features, SERVED, {"name": "doomed"}, p=p)
    feature = features + "{f}/"
    call("PUT", feature, SERVED, {"name": "banner", "description": "top"}, p=p, f=banner["id"])
    call("PATCH", feature, SERVED, {"description": "top bar"}, p=p, f=banner["id"])
    options = feature + "mv-options/"
    call(
        "POST",
        options,
        SERVED,
        {"type": "unicode", "string_value": "red", "default_percentage_allocation": 50},
        p=p,
        f=color["id"],
    )
    blue = call(
        "POST",
        options,
        SERVED,
        {"type": "unicode", "string_value": "blue", "default_percentage_allocation": 10},
        p=p,
        f=color["id"],
    )
    option = options + "{o}/"
    call(
        "PUT",
        option,
        SERVED,
        {"type": "unicode", "string_value": "blue", "default_percentage_allocation": 20},
        p=p,
        f=color["id"],
        o=blue["id"],
    )
    call(
        "PATCH",
        option,
        SERVED,
        {"default_percentage_allocation": 30},
        p=p,
        f=color["id"],
        o=blue["id"],
    )
    call("DELETE", option, SERVED, p=p, f=color["id"], o=blue["id"])

    # Tags select flags (for integrations and SDK filters).
    tags = P + "tags/"
    tag = call("POST", tags, AUDIT, {"label": "team-a"}, p=p)
    tag_path = tags + "{t}/"
    call("PUT", tag_path, SERVED, {"label": "team-b"}, p=p, t=tag["id"])
    call("PATCH", tag_path, SERVED, {"color": "#112233"}, p=p, t=tag["id"])
    call("DELETE", tag_path, SERVED, p=p, t=tag["id"])

    # Segments.
    segments = P + "segments/"
    gold = call("POST", segments, SERVED, {"name": "gold", "rules": RULES}, p=p)
    silver = call("POST", segments, SERVED, {"name": "silver", "rules": RULES}, p=p)
    segment = segments + "{s}/"
    call("PUT", segment, SERVED, {"name": "gold", "rules": RULES}, p=p, s=gold["id"])
    call("PATCH", segment, SERVED, {"name": "golden"}, p=p, s=gold["id"])

    # Feature states and segment overrides in one environment.
    states = script.admin.get(f"/api/v1/environments/{k}/featurestates/").json()["results"]
    banner_state = next(s for s in states if s["feature"] == banner["id"])["id"]
    env_state = E + "featurestates/{s}/"
    call("PUT", env_state, SERVED, {"enabled": True}, k=k, s=banner_state)
    call("PATCH", env_state, SERVED, {"feature_state_value": "hello"}, k=k, s=banner_state)
    create_override = E + "features/{f}/create-segment-override/"
    first = call(
        "POST",
        create_override,
        SERVED,
        {"segment": gold["id"], "enabled": True},
        k=k,
        f=banner["id"],
    )
    second = call("POST", create_override, SERVED, {"segment": silver["id"]}, k=k, f=banner["id"])
    call(
        "POST",
        "/api/v1/features/feature-segments/update-priorities/",
        SERVED,
        [{"id": first["id"], "priority": 1}, {"id": second["id"], "priority": 0}],
    )
    any_state = "/api/v1/features/featurestates/{s}/"
    call("PUT", any_state, SERVED, {"enabled": False}, s=first["id"])
    call("PATCH", any_state, SERVED, {"feature_state_value": "gold!"}, s=first["id"])
    call("DELETE", any_state, SERVED, s=second["id"])

    # Identities, traits and identity overrides.
    identities = E + "identities/"
    ann = call("POST", identities, SERVED, {"identifier": "ann"}, k=k)
    bob = call("POST", identities, SERVED, {"identifier": "bob"}, k=k)
    traits = identities + "{i}/traits/"
    trait = call(
        "POST", traits, SERVED, {"trait_key": "plan", "trait_value": "gold"}, k=k, i=ann["id"]
    )
    call("DELETE", traits + "{t}/", SERVED, k=k, i=ann["id"], t=trait["id"])
    overrides = identities + "{i}/featurestates/"
    override = call(
        "POST", overrides, SERVED, {"feature": banner["id"], "enabled": True}, k=k, i=ann["id"]
    )
    override_path = overrides + "{s}/"
    call("PUT", override_path, SERVED, {"enabled": False}, k=k, i=ann["id"], s=override["id"])
    call(
        "PATCH",
        override_path,
        SERVED,
        {"feature_state_value": "vip"},
        k=k,
        i=ann["id"],
        s=override["id"],
    )
    call("DELETE", override_path, SERVED, k=k, i=ann["id"], s=override["id"])
    call("DELETE", identities + "{i}/", SERVED, k=k, i=bob["id"])

    # Experiments.
    experiments = "/api/v1/environments/{env_key}/experiments/"
    experiment = call(
        "POST", experiments, SERVED, {"name": "colours", "feature": color["id"]}, env_key=k
    )
    experiment_path = experiments + "{x}/"
    call("PUT", experiment_path, SERVED, {"running": False}, env_key=k, x=experiment["id"])
    call("PATCH", experiment_path, SERVED, {"running": True}, env_key=k, x=experiment["id"])
    call("DELETE", experiment_path, SERVED, env_key=k, x=experiment["id"])

    # Integrations: the snapshot is rebuilt, nothing served changes.
    for kind, body in (
        ("heap", {"api_key": "k"}),
        ("mixpanel", {"api_key": "k"}),
        ("amplitude", {"api_key": "k"}),
        ("segment", {"api_key": "k"}),
        ("rudderstack", {"api_key": "k", "base_url": "https://93.184.216.34/"}),
        ("webhook", {"base_url": "https://93.184.216.34/hook", "secret": "s" * 32}),
    ):
        base = E + f"integrations/{kind}/"
        made = call("POST", base, AUDIT, body, k=k)
        if made is None:
            continue
        path = base + "{n}/"
        call("PUT", path, AUDIT, {"enabled": False}, k=k, n=made["id"])
        call("PATCH", path, AUDIT, {"enabled": True}, k=k, n=made["id"])
        call("DELETE", path, AUDIT, k=k, n=made["id"])

    # Cohort sync.
    sync_keys = E + "cohort-sync-keys/"
    sync_key = call("POST", sync_keys, AUDIT, {"name": "mixpanel"}, k=k)
    call("DELETE", sync_keys + "{c}/", AUDIT, k=k, c=sync_key["id"])
    call("PUT", E + "cohort-sync-settings/", AUDIT, {"member_key": "email"}, k=k)
    call("PATCH", E + "cohort-sync-settings/", AUDIT, {"member_key": "user_id"}, k=k)

    # An import, then the deletes.
    call("POST", "/api/v1/projects/import/", SERVED, standard_document())
    call("DELETE", segment, SERVED, p=p, s=silver["id"])
    call("DELETE", feature, SERVED, p=p, f=doomed["id"])
    call("DELETE", E, AUDIT, k=k)
    call("DELETE", P, AUDIT, p=p)


def test_write_routes__every_admin_write__goes_through_the_change_path(
    world: World, admin: Admin
) -> None:
    script = Script(world, admin)
    try:
        _run(script)
    finally:
        script.database.dispose()
    routes = _admin_write_routes(admin)
    assert not script.failures, "\n".join(script.failures)
    assert routes - script.called == set(), "write routes this script does not call"
    assert script.called - routes == set(), "routes the script names that do not exist"
