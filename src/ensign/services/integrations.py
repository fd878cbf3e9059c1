"""Analytics integrations of an environment: configuration, validation and delivery status.

Every change goes through the change path with `Reach.SNAPSHOT`: the environment's revision
bumps, so each process rebuilds its snapshot and the identify path starts (or stops) recording
for the integration at once, but no flag served changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput, NotFound
from ensign.integrations.catalog import SCHEMAS
from ensign.integrations.common import DEFAULTS, DELIVER_MODES, MAX_RESEND_AFTER_HOURS
from ensign.integrations.schema import BOOL, Option, Schema
from ensign.services import changes as change_path
from ensign.services import integration_audit
from ensign.services.admin import access
from ensign.services.destinations import Resolver, check_base_url, resolve_host
from ensign.services.keys import AdminPrincipal
from ensign.storage import integrations as integration_store
from ensign.storage.models import DeliveryAttempt, Environment, IntegrationConfig, utcnow
from ensign.storage.pagination import Page, Window
from ensign.storage.unit_of_work import UnitOfWork

DUPLICATE = "This integration already exists for this environment."


@dataclass(frozen=True)
class IntegrationInput:
    """Fields of a create or update; on update, only those in `given` change."""

    api_key: str | None = None
    base_url: str | None = None
    region: str | None = None
    enabled: bool | None = None
    feature_names: list[str] | None = None
    tag: str | None = None
    deliver: str | None = None
    resend_after_hours: object = None
    exposures: bool | None = None
    events: bool | None = None
    # The destination's own settings (`Schema.options`) given, by name.
    options: dict[str, object] = field(default_factory=dict)
    given: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DeliveryStatus:
    delivered: int
    suppressed: int
    pending: int
    retrying: int
    failed: int
    given_up: int
    last_success_at: dt.datetime | None
    last_error_at: dt.datetime | None
    last_error: str | None


# An environment as a surface names it: the admin API by its key, the dashboard by its id.
EnvironmentRef = str | int


def environment_of(session: Session, principal: AdminPrincipal, ref: EnvironmentRef) -> Environment:
    if isinstance(ref, int):
        return access.environment_by_id(session, principal, ref)
    return access.environment_for(session, principal, ref)


def list_integrations(
    unit: UnitOfWork, principal: AdminPrincipal, environment: EnvironmentRef, kind: str
) -> list[IntegrationConfig]:
    env = environment_of(unit.session, principal, environment)
    configs = integration_store.configs_of_environment(unit.session, env.id)
    return [c for c in configs if c.kind == kind]


def get_integration(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    kind: str,
    integration_id: int,
) -> IntegrationConfig:
    env = environment_of(unit.session, principal, environment)
    return _config_in(unit.session, env, kind, integration_id)


def _config_in(
    session: Session, env: Environment, kind: str, integration_id: int
) -> IntegrationConfig:
    config = integration_store.config_by_id(session, integration_id)
    if config is None or config.environment_id != env.id or config.kind != kind:
        raise NotFound("Integration not found.")
    return config


def schema_of(kind: str) -> Schema:
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise NotFound("No such integration.")
    return schema


def _apply(
    config: IntegrationConfig,
    kind: str,
    data: IntegrationInput,
    *,
    allow_private: bool,
    resolve: Resolver,
) -> None:
    schema = schema_of(kind)
    given = data.given
    if "api_key" in given:
        key = (data.api_key or "").strip()
        if (schema.key_required or key) and not 0 < len(key) <= 200:
            raise InvalidInput("api_key: 1 to 200 characters are required.", field="api_key")
        config.api_key = key
    _apply_endpoint(config, schema, data, allow_private=allow_private, resolve=resolve)
    if "enabled" in given and data.enabled is not None:
        config.enabled = data.enabled
    if "feature_names" in given and data.feature_names is not None and "tag" in given and data.tag:
        raise InvalidInput("Give either feature_names or tag, not both.", field="feature_names")
    if "feature_names" in given:
        names = data.feature_names
        if names is not None and not all(isinstance(n, str) and n for n in names):
            raise InvalidInput(
                "feature_names: a list of feature names is required.", field="feature_names"
            )
        config.feature_names = None if names is None else sorted(set(names))
        if names is not None:
            config.tag_label = None
    if "tag" in given:
        tag = (data.tag or "").strip() or None
        if tag is not None and len(tag) > 100:
            raise InvalidInput("tag: at most 100 characters.", field="tag")
        config.tag_label = tag
        if tag is not None:
            config.feature_names = None
    _apply_delivery(config, data)
    options = dict(config.options or {})
    if "exposures" in given and data.exposures is not None:
        options["exposures"] = data.exposures
    options.setdefault("exposures", DEFAULTS.exposures)
    if "events" in given and data.events is not None:
        options["events"] = data.events
    options.setdefault("events", DEFAULTS.events)
    for option in schema.options:
        if option.name in data.options:
            options[option.name] = _option_value(option, data.options[option.name])
        options.setdefault(option.name, option.default)
        if option.required and options[option.name] in (None, ""):
            raise InvalidInput(f"{option.name}: this field is required.", field=option.name)
    config.options = options


def _apply_endpoint(
    config: IntegrationConfig,
    schema: Schema,
    data: IntegrationInput,
    *,
    allow_private: bool,
    resolve: Resolver,
) -> None:
    """Where the integration sends: a region's host, or a URL checked against the
    destination rules (a destination with no regions always needs one)."""
    given = data.given
    if "region" in given and data.region is not None and "base_url" in given and data.base_url:
        raise InvalidInput("Give either region or base_url, not both.", field="region")
    if "region" in given and data.region is not None:
        region = data.region.strip().lower()
        if region not in schema.regions:
            if not schema.regions:
                raise InvalidInput(
                    f"region: {schema.label} has no regions; give base_url.", field="region"
                )
            choices = ", ".join(schema.regions)
            raise InvalidInput(f"region: must be one of {choices}.", field="region")
        config.region, config.base_url = region, schema.regions[region]
    elif "base_url" in given and data.base_url:
        config.base_url = check_base_url(
            data.base_url, allow_private=allow_private, resolve=resolve
        )
        config.region = None
    if not config.base_url:
        if not schema.regions:
            raise InvalidInput("base_url: this field is required.", field="base_url")
        region = next(iter(schema.regions))
        config.region, config.base_url = region, schema.regions[region]


def _option_value(option: Option, value: object) -> bool | str | None:
    if option.type == BOOL:
        if value is None:
            return option.default
        if not isinstance(value, bool):
            raise InvalidInput(f"{option.name}: true or false is required.", field=option.name)
        return value
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{option.name}: a string is required.", field=option.name)
    text = (value or "").strip()
    if len(text) > option.max_chars:
        raise InvalidInput(
            f"{option.name}: at most {option.max_chars} characters.", field=option.name
        )
    # Blank means the default: for a secret, none (e.g. Mixpanel events then go to /track).
    return text or option.default


def _apply_delivery(config: IntegrationConfig, data: IntegrationInput) -> None:
    given = data.given
    if "deliver" in given and data.deliver is not None:
        deliver = data.deliver.strip().lower()
        if deliver not in DELIVER_MODES:
            raise InvalidInput(
                f"deliver: must be one of {', '.join(DELIVER_MODES)}.", field="deliver"
            )
        config.deliver = deliver
    if "resend_after_hours" in given and data.resend_after_hours is not None:
        hours = data.resend_after_hours
        if (
            not isinstance(hours, int)
            or isinstance(hours, bool)
            or not 0 <= hours <= MAX_RESEND_AFTER_HOURS
        ):
            raise InvalidInput(
                f"resend_after_hours: a whole number of hours from 0 (never) to "
                f"{MAX_RESEND_AFTER_HOURS} is required.",
                field="resend_after_hours",
            )
        config.resend_after_hours = hours
    if config.deliver is None:
        config.deliver = DEFAULTS.deliver
    if config.resend_after_hours is None:
        config.resend_after_hours = DEFAULTS.resend_after_hours


def create_integration(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    kind: str,
    data: IntegrationInput,
    *,
    allow_private: bool,
    resolve: Resolver = resolve_host,
) -> IntegrationConfig:
    """Configure a vendor for an environment; one of each kind per environment."""
    schema_of(kind)
    env = environment_of(unit.session, principal, environment)
    configs = integration_store.configs_of_environment(unit.session, env.id)
    if any(c.kind == kind for c in configs):
        raise InvalidInput(DUPLICATE)
    if "api_key" not in data.given and schema_of(kind).key_required:
        raise InvalidInput("api_key: this field is required.", field="api_key")
    now = utcnow()
    config = IntegrationConfig(
        environment_id=env.id,
        kind=kind,
        api_key="",
        base_url="",
        enabled=DEFAULTS.enabled,
        options={},
        delivered_count=0,
        failed_count=0,
        given_up_count=0,
        created_at=now,
        updated_at=now,
    )
    _apply(config, kind, data, allow_private=allow_private, resolve=resolve)
    integration_store.add_config(unit.session, config)
    change_path.apply(
        unit, principal, [integration_audit.change(env, config, action=change_path.CREATED)]
    )
    return config


def update_integration(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    kind: str,
    integration_id: int,
    data: IntegrationInput,
    *,
    allow_private: bool,
    resolve: Resolver = resolve_host,
) -> IntegrationConfig:
    env = environment_of(unit.session, principal, environment)
    config = _config_in(unit.session, env, kind, integration_id)
    before, key = integration_audit.snapshot(config), config.api_key
    _apply(config, kind, data, allow_private=allow_private, resolve=resolve)
    config.updated_at = utcnow()
    integration_store.save(unit.session)
    change = integration_audit.change(
        env, config, action=change_path.UPDATED, before=before, key_changed=config.api_key != key
    )
    change_path.apply(unit, principal, [change])
    return config


def delete_integration(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    kind: str,
    integration_id: int,
) -> None:
    """Remove the configuration, with its undelivered evaluations and attempt log."""
    env = environment_of(unit.session, principal, environment)
    config = _config_in(unit.session, env, kind, integration_id)
    change = integration_audit.change(
        env, config, action=change_path.DELETED, before=integration_audit.snapshot(config)
    )
    integration_store.delete_config(unit.session, config)
    change_path.apply(unit, principal, [change])


def delivery_status(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    kind: str,
    integration_id: int,
    *,
    unwritten_suppressed: Callable[[int], int] = lambda _: 0,
) -> DeliveryStatus:
    """The counters, with the suppressed identify calls this process has counted but not
    written yet (`storage.suppressed`)."""
    config = get_integration(unit, principal, environment, kind, integration_id)
    return status_of(unit.session, config, unwritten_suppressed)


def status_of(
    session: Session, config: IntegrationConfig, unwritten_suppressed: Callable[[int], int]
) -> DeliveryStatus:
    counts = integration_store.queue_counts(session, config.id)
    return DeliveryStatus(
        delivered=config.delivered_count,
        suppressed=(config.suppressed_count or 0) + unwritten_suppressed(config.id),
        pending=counts.pending,
        retrying=counts.retrying,
        failed=config.failed_count,
        given_up=config.given_up_count,
        last_success_at=config.last_success_at,
        last_error_at=config.last_error_at,
        last_error=config.last_error,
    )


def delivery_attempts(
    unit: UnitOfWork,
    principal: AdminPrincipal,
    environment: EnvironmentRef,
    kind: str,
    integration_id: int,
    window: Window,
) -> Page[DeliveryAttempt]:
    """The integration's requests to its vendor, newest first."""
    config = get_integration(unit, principal, environment, kind, integration_id)
    return integration_store.attempts(unit.session, config.id, window)
