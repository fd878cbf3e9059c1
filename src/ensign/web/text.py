"""Refuse text that cannot be stored (see `services.text`) as it enters, so no endpoint can
forget it: the path parameters of the SDK API and OFREP before routing (`StorablePath`), and
every query parameter, path parameter and body field of the admin API and the dashboard once per
request (`reject_unstorable_text`, `check_fields`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from fastapi import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from ensign.errors import InvalidInput
from ensign.services.text import check_json_text, check_text, is_storable
from ensign.web.errors import is_ofrep_path, is_sdk_path, refused


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


class StorablePath:
    """Answers 400, in the surface's format, for an SDK or OFREP path (percent-decoded) that
    breaks the text rule, naming the route's parameter that holds it: a NUL would otherwise
    reach PostgreSQL, which refuses it with an error (a 500), before the key is even checked.

    `routes` are the surfaces' plain Starlette routes, matched again only for a path refused.
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path and not is_storable(path) and (is_sdk_path(path) or is_ofrep_path(path)):
            try:
                for name, value in self._parameters(scope):
                    check_text(value, name)
                check_text(path, "path")  # in no parameter: a path no route matches
            except InvalidInput as error:
                await refused(path, error)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _parameters(self, scope: Scope) -> list[tuple[str, str]]:
        for route in self.routes:
            match, child = route.matches(scope)
            if match is not Match.NONE:
                params = child.get("path_params", {})
                return [(k, v) for k, v in params.items() if isinstance(v, str)]
        return []
