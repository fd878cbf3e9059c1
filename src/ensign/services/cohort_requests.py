"""Cohort-sync requests, validated: pure functions of the decoded JSON body.

A malformed envelope raises InvalidInput (the caller answers 400, which pauses a Mixpanel
sync); a member without a usable identifier is only skipped and counted, never fatal.

Amplitude's cohort webhook destination ("Cohort Webhooks" in Amplitude's destination catalog,
https://amplitude.com/docs/data/destination-catalog/cohort-webhooks; the same page as
docs/data/destinations/cohort-webhooks.md in Amplitude-Developer-Docs/amplitude-dev-center),
as documented there:

- Amplitude POSTs JSON (`Content-Type: application/json`, `User-Agent: Amplitude/Webhook/1.0`)
  to one URL, plus up to five headers the user defines: that is where the cohort-sync key goes.
- Each POST is one batch of users *entering* or *leaving* one cohort, never both. The first
  sync sends the whole cohort as entering; later syncs send only who entered and who left.
  Batches hold 1,000 users by default ("Receiving behavioral cohorts", partner docs), and the
  size is configurable on Amplitude's side.
- The body is the default "Amplitude cohort format", or whatever the user's Apache FreeMarker
  template renders from the same `input` object. Its fields: `cohort_name` (string),
  `cohort_id` (string, e.g. "7khm89cz"), `in_cohort` (boolean: true = this batch enters,
  false = it leaves), `computed_time` (string, epoch seconds), `message_id` (string, unique per
  update message and kept on retries, e.g. "<uuid>::enter::0"), and `users`, a list of objects
  whose `user_id` is the Amplitude user id.
- The destination must answer 200 within 1 to 2 seconds, or Amplitude times out and sends the
  batch again, so duplicates happen, possibly after later batches.

Ensign expects exactly that shape, whether from the default payload or from the template in
the README (which renders it). `in_cohort` may also come as the text "true"/"false", since a
template may quote it; `cohort_id` may be a number. `user_id` is the identity identifier (the
member-mapping setting is Mixpanel's); users without a usable one are skipped and counted.
A resent batch (same `message_id` and content, `AmplitudeSync.batch_key`) is applied once.
Amplitude's per-user example template (a bare list of users) is refused with a 400 naming the
shape Ensign wants, since it carries no cohort id to key the trait by.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ensign.errors import InvalidInput
from ensign.services.text import check_text, is_storable

MEMBERS = "members"
ADD_MEMBERS = "add_members"
REMOVE_MEMBERS = "remove_members"
MIXPANEL_ACTIONS = (MEMBERS, ADD_MEMBERS, REMOVE_MEMBERS)
MAX_COHORT_ID_LENGTH = 150
MAX_COHORT_NAME_LENGTH = 2000
MAX_SESSION_ID_LENGTH = 200
# The member property holding the identity identifier in Amplitude's batches.
AMPLITUDE_USER_KEY = "user_id"
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


def cohort_id(value: Any, field: str) -> str:
    """A source's cohort id: text (or a whole number) of 1 to MAX_COHORT_ID_LENGTH characters,
    since it becomes part of the membership trait's key."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_COHORT_ID_LENGTH:
        raise InvalidInput(f"{field}: must be a string of 1 to {MAX_COHORT_ID_LENGTH} characters.")
    if any(c in value for c in "\x00\r\n\t"):
        raise InvalidInput(f"{field}: must not contain control characters.")
    return value


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
    raw_id = cohort_id(parameters.get("mixpanel_cohort_id"), "parameters.mixpanel_cohort_id")
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


AMPLITUDE_SHAPE = (
    'The body must be Amplitude\'s cohort format: {"cohort_id", "cohort_name", "in_cohort", '
    '"message_id", "users": [{"user_id": ...}]}.'
)


@dataclass(frozen=True)
class AmplitudeSync:
    """One batch of Amplitude's cohort webhook, validated (see the module docstring)."""

    action: str
    cohort_id: str
    cohort_name: str | None
    message_id: str | None
    users: Sequence[Any]

    @property
    def batch_key(self) -> str | None:
        """What a resend of this batch shares with it and no other batch does: its message id
        (kept on retries) and its content, in case a template's message id is less unique than
        Amplitude's. None without a message id: such batches cannot be told apart."""
        if self.message_id is None:
            return None
        content = orjson.dumps([self.message_id, self.action, self.cohort_id, self.users])
        return "amplitude:" + hashlib.sha256(content).hexdigest()


def amplitude_action(body: Any) -> str | None:
    """The action a batch stands for: its users enter (`in_cohort` true) or leave the cohort."""
    in_cohort = body.get("in_cohort") if isinstance(body, dict) else None
    if in_cohort is True or in_cohort == "true":
        return ADD_MEMBERS
    if in_cohort is False or in_cohort == "false":
        return REMOVE_MEMBERS
    return None


def parse_amplitude(body: Any, *, max_members: int) -> AmplitudeSync:
    """Validate a batch; raise InvalidInput, naming the first problem, when malformed.

    Users themselves are not validated here: one without a usable `user_id` is skipped.
    """
    if not isinstance(body, dict):
        raise InvalidInput(AMPLITUDE_SHAPE)
    action = amplitude_action(body)
    if action is None:
        raise InvalidInput("in_cohort: must be true (the users enter) or false (they leave).")
    external_id = cohort_id(body.get("cohort_id"), "cohort_id")
    users = body.get("users")
    if not isinstance(users, list):
        raise InvalidInput('users: must be a list of {"user_id": ...} objects.')
    if len(users) > max_members:
        raise InvalidInput(f"users: at most {max_members} users per request.")
    message_id = body.get("message_id")
    if message_id is not None and (
        not isinstance(message_id, str) or len(message_id) > MAX_SESSION_ID_LENGTH
    ):
        raise InvalidInput(
            f"message_id: must be a string of at most {MAX_SESSION_ID_LENGTH} characters."
        )
    for name in ("cohort_name", "message_id"):
        if isinstance(body.get(name), str):
            check_text(body[name], name)
    return AmplitudeSync(
        action=action,
        cohort_id=external_id,
        cohort_name=optional_text(body.get("cohort_name"), MAX_COHORT_NAME_LENGTH) or None,
        message_id=message_id or None,
        users=users,
    )


@dataclass(frozen=True)
class Named:
    """What a call names, read leniently from a body that may be malformed: for the log of a
    failed call, which records what was sent. Values are as sent, not validated."""

    cohort_id: Any = None
    cohort_name: str | None = None
    action: str | None = None
    session_id: Any = None
    page: int | None = None
    total_pages: int | None = None
    received: int = 0


def mixpanel_named(body: Any) -> Named:
    parameters = body.get("parameters") if isinstance(body, dict) else None
    parameters = parameters if isinstance(parameters, dict) else {}
    page_info = parameters.get("page_info")
    page_info = page_info if isinstance(page_info, dict) else {}
    members = parameters.get("members")
    return Named(
        cohort_id=parameters.get("mixpanel_cohort_id"),
        cohort_name=optional_text(parameters.get("mixpanel_cohort_name"), MAX_COHORT_NAME_LENGTH),
        action=mixpanel_action(body),
        session_id=parameters.get("mixpanel_session_id"),
        page=bounded_int(page_info.get("page_count")),
        total_pages=bounded_int(page_info.get("total_pages")),
        received=len(members) if isinstance(members, list) else 0,
    )


def amplitude_named(body: Any) -> Named:
    fields = body if isinstance(body, dict) else {}
    users = fields.get("users")
    return Named(
        cohort_id=fields.get("cohort_id"),
        cohort_name=optional_text(fields.get("cohort_name"), MAX_COHORT_NAME_LENGTH),
        action=amplitude_action(body),
        session_id=fields.get("message_id"),
        received=len(users) if isinstance(users, list) else 0,
    )


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
