"""Audit entries for integration changes: what an integration sends where, never its key.

The vendor key (Heap environment ID, Mixpanel project token) is a credential for the vendor's
ingestion API; the audit log is readable by every admin of the organisation, so it records
only that the key changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ensign.integrations.catalog import SCHEMAS
from ensign.services.admin import audit
from ensign.services.keys import AdminPrincipal
from ensign.storage.models import Environment, IntegrationConfig

RESOURCE_TYPE = "integration"
REDACTED = "[redacted]"


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


def record(
    session: Session,
    principal: AdminPrincipal,
    environment: Environment,
    config: IntegrationConfig,
    *,
    action: str,
    before: dict[str, Any] | None = None,
    key_changed: bool = False,
) -> None:
    """Add the entry for a create (`before` None), update or delete of `config`."""
    verb = {audit.CREATED: "created", audit.UPDATED: "updated", audit.DELETED: "deleted"}[action]
    schema = SCHEMAS.get(config.kind)
    label = schema.label if schema else config.kind.capitalize()
    log = f"{label} integration {verb}: {environment.name}"
    if key_changed:
        log += " (API key changed)"
    audit.record(
        session,
        principal,
        action=action,
        resource_type=RESOURCE_TYPE,
        resource_id=config.id,
        log=log,
        before=before,
        after=None if action == audit.DELETED else snapshot(config),
        project_id=environment.project_id,
        environment_id=environment.id,
    )
