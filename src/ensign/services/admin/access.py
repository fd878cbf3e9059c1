"""Finding what the caller may see: every resource belongs to the caller's organisation."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ensign.errors import InvalidInput, NotFound
from ensign.services.keys import AdminPrincipal
from ensign.services.text import is_storable
from ensign.storage import environments as environment_store
from ensign.storage import features as feature_store
from ensign.storage import identities as identity_store
from ensign.storage.models import (
    Environment,
    Feature,
    FeatureState,
    Identity,
    MultivariateOption,
    Organisation,
    Project,
    Segment,
    Tag,
)

ID_MAX = 2**31 - 1


def is_valid_id(value: int) -> bool:
    return 1 <= value <= ID_MAX


def organisation_for(session: Session, principal: AdminPrincipal, org_id: int) -> Organisation:
    organisation = (
        environment_store.organisation_by_id(session, org_id) if is_valid_id(org_id) else None
    )
    if organisation is None or organisation.id != principal.organisation_id:
        raise NotFound("Organisation not found.")
    return organisation


def project_for(session: Session, principal: AdminPrincipal, project_id: int) -> Project:
    project = (
        environment_store.project_by_id(session, project_id) if is_valid_id(project_id) else None
    )
    if project is None or project.organisation_id != principal.organisation_id:
        raise NotFound("Project not found.")
    return project


def referenced_project(
    session: Session, principal: AdminPrincipal, project_id: int, *, field: str = "project"
) -> Project:
    """A project named in a request body: unknown ones are bad input rather than 404."""
    try:
        return project_for(session, principal, project_id)
    except NotFound:
        raise InvalidInput(f"{field}: no such project.", field=field) from None


def environment_for(session: Session, principal: AdminPrincipal, api_key: str) -> Environment:
    is_plausible = len(api_key) <= 100 and is_storable(api_key)
    environment = environment_store.environment_by_key(session, api_key) if is_plausible else None
    if environment is None:
        raise NotFound("Environment not found.")
    project = environment_store.project_by_id(session, environment.project_id)
    if project is None or project.organisation_id != principal.organisation_id:
        raise NotFound("Environment not found.")
    return environment


# An environment as the admin API names it (its client key) or the dashboard does (its id).
EnvironmentRef = str | int


def environment_ref(
    session: Session, principal: AdminPrincipal, environment: EnvironmentRef
) -> Environment:
    if isinstance(environment, str):
        return environment_for(session, principal, environment)
    return environment_by_id(session, principal, environment)


def environment_by_id(session: Session, principal: AdminPrincipal, env_id: int) -> Environment:
    environment = (
        environment_store.environment_by_id(session, env_id) if is_valid_id(env_id) else None
    )
    if environment is None:
        raise NotFound("Environment not found.")
    project_for(session, principal, environment.project_id)
    return environment


def feature_for(session: Session, project: Project, feature_id: int) -> Feature:
    feature = feature_store.feature_by_id(session, feature_id) if is_valid_id(feature_id) else None
    if feature is None or feature.project_id != project.id:
        raise NotFound("Feature not found.")
    return feature


def referenced_feature(
    session: Session, project_id: int, feature_id: int, *, field: str = "feature"
) -> Feature:
    feature = feature_store.feature_by_id(session, feature_id) if is_valid_id(feature_id) else None
    if feature is None or feature.project_id != project_id:
        raise InvalidInput(f"{field}: no such feature in this project.", field=field)
    return feature


def option_for(session: Session, feature: Feature, option_id: int) -> MultivariateOption:
    option = feature_store.option_by_id(session, option_id) if is_valid_id(option_id) else None
    if option is None or option.feature_id != feature.id:
        raise NotFound("Multivariate option not found.")
    return option


def tag_for(session: Session, project: Project, tag_id: int) -> Tag:
    tag = feature_store.tag_by_id(session, tag_id) if is_valid_id(tag_id) else None
    if tag is None or tag.project_id != project.id:
        raise NotFound("Tag not found.")
    return tag


def segment_for(session: Session, project: Project, segment_id: int) -> Segment:
    segment = feature_store.segment_by_id(session, segment_id) if is_valid_id(segment_id) else None
    if segment is None or segment.project_id != project.id:
        raise NotFound("Segment not found.")
    return segment


def identity_for(session: Session, environment: Environment, identity_id: int) -> Identity:
    identity = (
        identity_store.identity_by_id(session, identity_id) if is_valid_id(identity_id) else None
    )
    if identity is None or identity.environment_id != environment.id:
        raise NotFound("Identity not found.")
    return identity


def feature_state_for(
    session: Session, principal: AdminPrincipal, state_id: int
) -> tuple[FeatureState, Environment]:
    state = feature_store.feature_state_by_id(session, state_id) if is_valid_id(state_id) else None
    if state is None:
        raise NotFound("Feature state not found.")
    environment = environment_store.environment_by_id(session, state.environment_id)
    assert environment is not None
    project = environment_store.project_by_id(session, environment.project_id)
    if project is None or project.organisation_id != principal.organisation_id:
        raise NotFound("Feature state not found.")
    return state, environment
