"""Refuse text that cannot be stored (see `services.text`) as it enters the admin API and the
dashboard: once per request, for every query parameter, path parameter and body field, so no
endpoint can forget it."""

from __future__ import annotations

import json
from collections.abc import Iterable

from fastapi import Request

from ensign.services.text import check_json_text, check_text


def check_fields(fields: Iterable[tuple[str, object]]) -> None:
    """Names and text values of query parameters or form fields (files are left alone)."""
    for name, value in fields:
        check_text(name, name)
        if isinstance(value, str):
            check_text(value, name)


async def reject_unstorable_text(request: Request) -> None:
    """A dependency of every admin route (FastAPI has read the body already; this reuses it)."""
    check_fields(request.query_params.multi_items())
    check_fields(request.path_params.items())
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        check_fields(form.multi_items())
        return
    body = await request.body()
    if not body.strip():
        return
    try:
        # The standard parser, as FastAPI's: it keeps what orjson would refuse (lone surrogates).
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return  # FastAPI answers the parse error itself (`JsonDepthLimit` the nesting)
    check_json_text(parsed)
