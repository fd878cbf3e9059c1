"""Integration changes as the change path records them: what an integration sends where,
never its key.

The vendor key (Heap environment ID, Mixpanel project token) is a credential for the vendor's
ingestion API; the audit log is readable by every admin of the organisation, so it records
only that the key changed.
"""

from __future__ import annotations

from typing import Any

from ensign.integrations.catalog import SCHEMAS
from ensign.services import changes as change_path
from ensign.services.changes import Change, Reach
from ensign.storage.models import Environment, IntegrationConfig

RESOURCE_TYPE = "integration"
REDACTED = "[redacted]"
_VERBS = {
    change_path.CREATED: "created",
    change_path.UPDATED: "updated",
    change_path.DELETED: "deleted",
}


def snapshot(config: IntegrationConfig) -> dict[str, Any]:
    """The integration as the audit log shows it, its key redacted."""
    return {
        "id": config.id,
        "kind": config.kind,
        "api_key": REDACTED,
        "base_url": config.base_url,
        "region": config.region,
        "enabled": config.enabled,
        "feature_names": config.feature_names,
        "tag": config.tag_label,
        "deliver": config.deliver,
        "resend_after_hours": config.resend_after_hours,
        "options": _redacted(config.kind, config.options or {}),
    }


def _redacted(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    # Secret options (Mixpanel's API secret, a webhook's signing secret) are credentials too.
    schema = SCHEMAS.get(kind)
    secrets = schema.secret_names if schema else frozenset()
    return {k: REDACTED if k in secrets and v else v for k, v in options.items()}


def change(
    environment: Environment,
    config: IntegrationConfig,
    *,
    action: str,
    before: dict[str, Any] | None = None,
    key_changed: bool = False,
) -> Change:
    """The change of a create (`before` None), update or delete of `config`: it rebuilds the
    environment's snapshot (which integrations record identify calls) but serves no new flag."""
    schema = SCHEMAS.get(config.kind)
    label = schema.label if schema else config.kind.capitalize()
    log = f"{label} integration {_VERBS[action]}: {environment.name}"
    if key_changed:
        log += " (API key changed)"
    return Change(
        resource_type=RESOURCE_TYPE,
        resource_id=config.id,
        action=action,
        log=log,
        project_id=environment.project_id,
        environment_ids=(environment.id,),
        before=before,
        after=None if action == change_path.DELETED else snapshot(config),
        reach=Reach.SNAPSHOT,
    )
