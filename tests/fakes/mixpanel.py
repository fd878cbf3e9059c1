"""A fake Mixpanel `/engage`: validates profile updates as Mixpanel documents them and keeps
each profile's properties."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.script import Script, scripted

OPERATIONS = ("$set", "$set_once", "$add", "$union", "$append", "$remove", "$unset", "$delete")


class Invalid(Exception):
    pass


def _check_update(update: Any) -> dict[str, Any]:
    if not isinstance(update, dict):
        raise Invalid("each update must be an object")
    if not isinstance(update.get("$token"), str) or not update["$token"]:
        raise Invalid("$token is required")
    if not isinstance(update.get("$distinct_id"), str) or not update["$distinct_id"]:
        raise Invalid("$distinct_id is required")
    operations = [op for op in OPERATIONS if op in update]
    if len(operations) != 1:
        raise Invalid("exactly one operation is required")
    if "$set" in update and not isinstance(update["$set"], dict):
        raise Invalid("$set must be an object")
    if len(orjson.dumps(update)) > 1_000_000:
        raise Invalid("an update must be at most 1 MB")
    return update


class FakeMixpanel:
    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.profiles: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/engage", self.engage, methods=["POST"])])

    def _answer(self, verbose: bool, error: str | None) -> Response:
        if verbose:
            body = {"status": 0 if error else 1, "error": error}
            return Response(orjson.dumps(body), media_type="application/json")
        return Response(b"0" if error else b"1", media_type="text/plain")

    async def engage(self, request: Request) -> Response:
        raw = await request.body()
        with self._lock:
            self.requests.append(
                {
                    "headers": dict(request.headers),
                    "query": dict(request.query_params),
                    "body": raw,
                    "at": time.monotonic(),
                }
            )
        answer = self.script.next()
        if answer is not None:
            return await scripted(answer)
        verbose = request.query_params.get("verbose") in ("1", "2")
        if request.headers.get("content-encoding"):
            return Response("gzip is not supported", status_code=400)
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return self._answer(verbose, "expected a JSON body")
        try:
            updates = orjson.loads(raw)
            if not isinstance(updates, list) or not 1 <= len(updates) <= 2000:
                raise Invalid("the body must be an array of 1 to 2000 updates")
            checked = [_check_update(u) for u in updates]
        except (Invalid, ValueError) as error:
            return self._answer(verbose, str(error))
        with self._lock:
            for update in checked:
                self.updates.append(update)
                profile = self.profiles.setdefault((update["$token"], update["$distinct_id"]), {})
                profile.update(update.get("$set", {}))
        return self._answer(verbose, None)
