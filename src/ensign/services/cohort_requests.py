"""Cohort-sync requests, validated: pure functions of the decoded JSON body.

A malformed envelope raises InvalidInput (the caller answers 400, which pauses a Mixpanel
sync); a member without a usable identifier is only skipped and counted, never fatal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ensign.errors import InvalidInput
from ensign.services.text import check_text, is_storable

MEMBERS = "members"
ADD_MEMBERS = "add_members"
REMOVE_MEMBERS = "remove_members"
MIXPANEL_ACTIONS = (MEMBERS, ADD_MEMBERS, REMOVE_MEMBERS)
MAX_COHORT_ID_LENGTH = 150
MAX_COHORT_NAME_LENGTH = 2000
MAX_SESSION_ID_LENGTH = 200
WEBHOOK_COHORT = re.compile(r"[A-Za-z0-9_.-]{1,100}")


@dataclass(frozen=True)
class MixpanelSync:
    """One Mixpanel cohort-sync call, validated (analytics-apis.md §3.2)."""

    action: str
    cohort_id: str
    cohort_name: str | None
    cohort_description: str | None
    session_id: str | None
    page: int | None
    total_pages: int | None
    members: Sequence[Any]


def mixpanel_action(body: Any) -> str | None:
    """The action a body names, when it is one of Mixpanel's; echoed in every reply."""
    action = body.get("action") if isinstance(body, dict) else None
    return action if action in MIXPANEL_ACTIONS else None


def optional_text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def bounded_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 <= number <= 1_000_000 else None


def parse_mixpanel(body: Any, *, max_members: int) -> MixpanelSync:
    """Validate the envelope; raise InvalidInput, naming the first problem, when malformed.

    Members themselves are not validated here: one bad member is skipped, not fatal.
    """
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a JSON object.")
    action = mixpanel_action(body)
    if action is None:
        raise InvalidInput("action: must be one of members, add_members, remove_members.")
    parameters = body.get("parameters")
    if not isinstance(parameters, dict):
        raise InvalidInput("parameters: must be an object.")
    raw_id = parameters.get("mixpanel_cohort_id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    if not isinstance(raw_id, str) or not raw_id.strip() or len(raw_id) > MAX_COHORT_ID_LENGTH:
        raise InvalidInput(
            f"parameters.mixpanel_cohort_id: must be a string of 1 to {MAX_COHORT_ID_LENGTH} "
            "characters."
        )
    if any(c in raw_id for c in "\x00\r\n\t"):
        raise InvalidInput("parameters.mixpanel_cohort_id: must not contain control characters.")
    members = parameters.get("members", [])
    if not isinstance(members, list):
        raise InvalidInput("parameters.members: must be a list.")
    if len(members) > max_members:
        raise InvalidInput(f"parameters.members: at most {max_members} members per request.")
    session_id = parameters.get("mixpanel_session_id")
    if isinstance(session_id, int) and not isinstance(session_id, bool):
        session_id = str(session_id)
    if session_id is not None and (
        not isinstance(session_id, str) or len(session_id) > MAX_SESSION_ID_LENGTH
    ):
        raise InvalidInput(
            f"parameters.mixpanel_session_id: must be a string of at most "
            f"{MAX_SESSION_ID_LENGTH} characters."
        )
    for name in ("mixpanel_cohort_name", "mixpanel_cohort_description", "mixpanel_session_id"):
        if isinstance(parameters.get(name), str):
            check_text(parameters[name], f"parameters.{name}")
    page, total = _page_info(parameters.get("page_info"), required=action == MEMBERS)
    if action == MEMBERS and not session_id:
        raise InvalidInput("parameters.mixpanel_session_id: required for the members action.")
    return MixpanelSync(
        action=action,
        cohort_id=raw_id,
        cohort_name=optional_text(parameters.get("mixpanel_cohort_name"), MAX_COHORT_NAME_LENGTH),
        cohort_description=optional_text(parameters.get("mixpanel_cohort_description"), 10_000),
        session_id=session_id or None,
        page=page,
        total_pages=total,
        members=members,
    )


def _page_info(info: Any, *, required: bool) -> tuple[int | None, int | None]:
    problem = (
        "parameters.page_info: must be {total_pages, page_count}, page_count from 1 to total_pages."
    )
    if info is None and not required:
        return None, None
    if not isinstance(info, dict):
        raise InvalidInput(problem)
    total = bounded_int(info.get("total_pages"))
    page = bounded_int(info.get("page_count"))
    if total is None or page is None:
        raise InvalidInput(problem)
    if total == 0 and page in (0, 1):
        # An empty cohort: one empty page.
        return 1, 1
    if not 1 <= page <= total:
        raise InvalidInput(problem)
    return page, total


def parse_webhook(body: Any, *, max_members: int) -> Sequence[Any]:
    """The identifiers of a generic webhook call (`{"identifiers": [...]}`)."""
    identifiers = body.get("identifiers") if isinstance(body, dict) else None
    if not isinstance(identifiers, list):
        raise InvalidInput('The body must be {"identifiers": [...]}.')
    if len(identifiers) > max_members:
        raise InvalidInput(f"identifiers: at most {max_members} per request.")
    return identifiers


def check_webhook_cohort(cohort: str) -> str:
    if not WEBHOOK_COHORT.fullmatch(cohort):
        raise InvalidInput(
            "cohort: use 1 to 100 letters, digits, '_', '-' or '.' in the cohort's name."
        )
    return cohort


def usable_identifier(value: Any, max_length: int) -> str | None:
    """An identity identifier from a member value, or None when the member must be skipped."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        return None
    return value if is_storable(value) else None


def member_identifiers(
    members: Sequence[Any], key: str | None, max_length: int
) -> tuple[list[str], int]:
    """Distinct identifiers of the members (values of `key`, or the items themselves when
    `key` is None), and how many members had none usable."""
    found: dict[str, None] = {}
    skipped = 0
    for member in members:
        if key is not None:
            member = member.get(key) if isinstance(member, dict) else None
        identifier = usable_identifier(member, max_length)
        if identifier is None:
            skipped += 1
        else:
            found[identifier] = None
    return list(found), skipped
