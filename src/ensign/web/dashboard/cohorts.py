"""Cohort sync for an environment: its cohort-sync keys (the secret shown once, with the
settings to paste into Mixpanel and Amplitude), how Mixpanel's cohort members map to
identities, the synced cohorts with their managed segments, and the sync log."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ensign.errors import EnsignError
from ensign.services import cohorts
from ensign.services.text import is_storable
from ensign.storage.models import CohortSyncKey
from ensign.storage.pagination import Window
from ensign.web.dashboard import nav
from ensign.web.dashboard.core import (
    DashboardRoute,
    DashContext,
    FormErrors,
    redirect,
    render,
)
from ensign.web.dashboard.projects import check_name
from ensign.web.deps import COHORT_KEY_HEADER

router = APIRouter(route_class=DashboardRoute)

LOG_PAGE_SIZE = 25
MAX_PAGE = 100_000
MIXPANEL_PATH = "/api/v1/cohort-sync/mixpanel/"
AMPLITUDE_PATH = "/api/v1/cohort-sync/amplitude/"
# The member-mapping choices offered by name; OTHER means "the property typed next to it".
MEMBER_KEYS = {
    cohorts.DEFAULT_MEMBER_KEY: "Mixpanel distinct ID (mixpanel_distinct_id)",
    "email": "Email (email)",
}
OTHER = "other"


def _page_number(dash: DashContext) -> int:
    text = dash.request.query_params.get("page", "1")
    return max(1, min(int(text) if text.isdigit() else 1, MAX_PAGE))


def _destination_url(dash: DashContext, path: str) -> str:
    return str(dash.request.base_url).rstrip("/") + path


def _page(
    dash: DashContext,
    env_id: int,
    *,
    errors: FormErrors | None = None,
    new_key: tuple[CohortSyncKey, str] | None = None,
    mapping: tuple[str, str] | None = None,
    status_code: int | None = None,
) -> Response:
    """The cohort-sync page. `new_key` is a key just created, shown this once; `mapping` is
    the member-mapping form as submitted (choice, other property), when it is shown again."""
    page = _page_number(dash)
    with dash.state.units.read() as unit:
        context = nav.environment_context(unit.session, dash.user, env_id, "cohorts")
        window = Window((page - 1) * LOG_PAGE_SIZE, LOG_PAGE_SIZE)
        overview = cohorts.overview(unit, dash.user, env_id, window)
        current = overview.member_key
        log = overview.log
        if mapping is None:
            mapping = (current, "") if current in MEMBER_KEYS else (OTHER, current)
        context.update(
            keys=list(overview.keys),
            new_key=new_key,
            destination_url=_destination_url(dash, MIXPANEL_PATH),
            amplitude_url=_destination_url(dash, AMPLITUDE_PATH),
            key_header=COHORT_KEY_HEADER,
            source_title=cohorts.source_title,
            member_key=current,
            member_keys=MEMBER_KEYS,
            other=OTHER,
            mapping_choice=mapping[0],
            mapping_other=mapping[1],
            cohorts=overview.cohorts,
            log=list(log.items),
            log_count=log.count,
            page=page,
            has_next=page * LOG_PAGE_SIZE < log.count,
            form_key_name=dash.value("key_name") if dash.form is not None and not new_key else "",
            errors=errors or FormErrors(),
        )
        status = status_code if status_code is not None else (400 if errors else 200)
        return render(dash, "pages/cohorts.html", context, status_code=status)


@router.get("/environments/{env_id}/cohorts")
def show_cohorts(env_id: int, dash: DashContext) -> Response:
    return _page(dash, env_id)


@router.post("/environments/{env_id}/cohorts/keys")
def create_key(env_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    name = check_name(errors, dash.value("key_name"), "key_name")
    created: tuple[CohortSyncKey, str] | None = None
    if not errors:
        try:
            with dash.state.units.write() as unit:
                row, secret = cohorts.create_key(unit, dash.user, env_id, name)
                # Shown after the unit ends: keep what was loaded.
                unit.session.expunge(row)
                created = (row, secret)
        except EnsignError as error:
            if error.field is None:
                raise
            errors.add(error, "key_name")
    if created is None:
        return _page(dash, env_id, errors=errors)
    # The secret is answered in this response only: never put in the session or a redirect.
    return _page(dash, env_id, new_key=created, status_code=201)


@router.get("/environments/{env_id}/cohorts/keys/{key_id}/revoke")
def confirm_revoke_key(env_id: int, key_id: int, dash: DashContext) -> Response:
    with dash.state.units.read() as unit:
        key = next((k for k in cohorts.list_keys(unit, dash.user, env_id) if k.id == key_id), None)
        if key is None or not key.active:
            return redirect(f"/environments/{env_id}/cohorts")
        return render(
            dash,
            "pages/confirm.html",
            {
                "title": f"Revoke cohort-sync key {key.name!r}?",
                "message": "Syncs sent with it are refused (401) from now on; cohorts "
                "already synced keep their members. This cannot be undone.",
                "action": f"/environments/{env_id}/cohorts/keys/{key_id}/revoke",
                "cancel": f"/environments/{env_id}/cohorts",
                "confirm_label": "Yes, revoke",
            },
        )


@router.post("/environments/{env_id}/cohorts/keys/{key_id}/revoke")
def revoke_key(env_id: int, key_id: int, dash: DashContext) -> Response:
    with dash.state.units.write() as unit:
        name = cohorts.revoke_key(unit, dash.user, env_id, key_id).name
    dash.flash(f"Cohort-sync key {name!r} revoked.")
    return redirect(f"/environments/{env_id}/cohorts")


def _mapping_input(dash: DashContext, errors: FormErrors) -> tuple[str, str, str]:
    """The submitted member mapping: (choice, other property, the member key it means)."""
    choice = dash.value("member_key")
    other = dash.value("member_key_other").strip()
    if choice in MEMBER_KEYS:
        return choice, other, choice
    if choice != OTHER:
        errors.set("member_key", "Choose how members map to identities.")
        return choice, other, ""
    if not other:
        errors.set("member_key_other", "Enter the member property that holds the identifier.")
    elif len(other) > 200:
        errors.set("member_key_other", "At most 200 characters.")
    elif not is_storable(other):
        errors.set("member_key_other", "Must not contain NUL characters or unpaired surrogates.")
    return choice, other, other


@router.post("/environments/{env_id}/cohorts/member-mapping")
def update_member_mapping(env_id: int, dash: DashContext) -> Response:
    errors = FormErrors()
    choice, other, key = _mapping_input(dash, errors)
    if not errors:
        try:
            with dash.state.units.write() as unit:
                cohorts.set_member_key(unit, dash.user, env_id, key)
        except EnsignError as error:
            if error.field is None:
                raise
            errors.add(error, "member_key")
            if choice == OTHER and "member_key" in errors.fields:
                errors.set("member_key_other", errors.fields.pop("member_key"))
    if errors:
        return _page(dash, env_id, errors=errors, mapping=(choice, other))
    dash.flash(f"Cohort members now map to identities by {key}.")
    return redirect(f"/environments/{env_id}/cohorts")
