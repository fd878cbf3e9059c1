"""An environment's identities and their traits (their overrides are in `overrides`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ensign.errors import InvalidInput
from ensign.services.admin import identities
from ensign.services.text import check_text
from ensign.services.values import trait_value_from_json
from ensign.web.admin import render
from ensign.web.admin.routing import (
    Pages,
    admin_route,
    no_content,
    paginated,
    unpaginated,
)
from ensign.web.admin.schemas import Body, Identifier, TraitKey
from ensign.web.deps import Admin, State

router = APIRouter(tags=["Identities"])
route = admin_route
IDENTITIES = "/environments/{api_key}/identities/"
IDENTITY = IDENTITIES + "{identity_id}/"


class IdentityCreate(Body):
    identifier: Identifier


class TraitSet(Body):
    trait_key: TraitKey
    trait_value: Any


@route(router, IDENTITIES, ["GET"], summary="List or search identities")
def list_identities(
    api_key: str,
    request: Request,
    paging: Pages,
    state: State,
    principal: Admin,
    q: str | None = None,
) -> dict[str, Any]:
    with state.units.read() as unit:
        page = identities.list_identities(unit.session, principal, api_key, paging.window, search=q)
        return paginated(request, paging, page, render.identity)


@route(router, IDENTITIES, ["POST"], status_code=201, summary="Create an identity")
def create_identity(
    api_key: str, body: IdentityCreate, state: State, principal: Admin
) -> dict[str, Any]:
    limit = state.settings.max_identifier_length
    if len(body.identifier) > limit:
        raise InvalidInput(f"identifier: longer than {limit} characters.", field="identifier")
    with state.units.write() as unit:
        row = identities.create_identity(unit, principal, api_key, identifier=body.identifier)
        return render.identity(row)


@route(router, IDENTITY, ["GET"], summary="Read an identity")
def get_identity(api_key: str, identity_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        return render.identity(
            identities.get_identity(unit.session, principal, api_key, identity_id)
        )


@route(router, IDENTITY, ["DELETE"], status_code=204, summary="Delete an identity")
def delete_identity(api_key: str, identity_id: int, state: State, principal: Admin) -> Response:
    with state.units.write() as unit:
        identities.delete_identity(unit, principal, api_key, identity_id)
    return no_content()


# --- traits ---------------------------------------------------------------------------------


@route(router, IDENTITY + "traits/", ["GET"], summary="An identity's traits")
def list_traits(api_key: str, identity_id: int, state: State, principal: Admin) -> dict[str, Any]:
    with state.units.read() as unit:
        rows = identities.list_traits(unit.session, principal, api_key, identity_id)
        return unpaginated(rows, render.trait)


@route(router, IDENTITY + "traits/", ["POST"], status_code=201, summary="Set a trait")
def set_trait(
    api_key: str, identity_id: int, body: TraitSet, state: State, principal: Admin
) -> dict[str, Any]:
    if body.trait_value is None:
        raise InvalidInput("trait_value: may not be null; delete the trait.", field="trait_value")
    value = trait_value_from_json(
        body.trait_value, max_length=state.settings.max_trait_value_length
    )
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise InvalidInput("trait_value: integers must fit in 64 bits.", field="trait_value")
    if isinstance(value, str):
        check_text(value, "trait_value")
    with state.units.write() as unit:
        row = identities.set_trait(
            unit, principal, api_key, identity_id, key=body.trait_key, value=value
        )
        return render.trait(row)


@route(
    router, IDENTITY + "traits/{trait_id}/", ["DELETE"], status_code=204, summary="Delete a trait"
)
def delete_trait(
    api_key: str, identity_id: int, trait_id: int, state: State, principal: Admin
) -> Response:
    with state.units.write() as unit:
        identities.delete_trait(unit, principal, api_key, identity_id, trait_id)
    return no_content()
