"""A fake webhook receiver: checks each request as docs/destinations/webhook.md tells a
receiver to (content type, `X-Ensign-Signature` over the raw body with the path's secret,
its age, the items' shapes and limits), and records the items, deduplicating by `id`.

Each path is one receiver with its own secret (`secrets`), so several environments can send
to one fake with different secrets."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.script import Script, scripted

TOLERANCE_SECONDS = 300
MAX_ITEMS = 500
MAX_BODY_BYTES = 1_000_000
_COMMON = {"type": str, "id": str, "identity": str, "evaluated_at": str}
_SHAPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "flags": {**_COMMON, "traits": dict, "flags": list, "segments": list},
    "exposure": {**_COMMON, "experiment": str, "variant": str, "feature": (str, type(None))},
    "event": {**_COMMON, "event": str, "properties": dict},
}


class Invalid(Exception):
    pass


def is_signed(secret: str, body: bytes, header: str, now: float) -> bool:
    """The receiver's check, written from the documented algorithm (not taken from Ensign)."""
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    if match is None or abs(now - int(match[1])) > TOLERANCE_SECONDS:
        return False
    mac = hmac.new(secret.encode(), match[1].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), match[2])


def _check_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or item.get("type") not in _SHAPES:
        raise Invalid("an item must be an object whose type is flags, exposure or event")
    shape = _SHAPES[item["type"]]
    if set(item) != set(shape):
        raise Invalid(f"a {item['type']} item has exactly the fields {sorted(shape)}")
    for name, kind in shape.items():
        if not isinstance(item[name], kind):
            raise Invalid(f"{name} has the wrong type")
    if dt.datetime.fromisoformat(item["evaluated_at"]).tzinfo is None:
        raise Invalid("evaluated_at must carry its offset")
    if item["type"] == "flags":
        for flag in item["flags"]:
            if set(flag) != {"feature", "enabled", "value"} or not isinstance(
                flag["enabled"], bool
            ):
                raise Invalid("a flag is {feature, enabled, value}")
        if not all(isinstance(s, str) for s in item["segments"]):
            raise Invalid("segments are names")
    return item


class FakeWebhook:
    def __init__(self) -> None:
        self.script = Script()
        # Path (without the leading slash) → secret.
        self.secrets: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        # Path → accepted items, each once.
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.duplicates = 0
        self.refused: list[tuple[int, str]] = []
        self._ids: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/{path:path}", self.receive, methods=["POST"])])

    def received(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.items.get(path, []))

    async def receive(self, request: Request) -> Response:
        raw = await request.body()
        path = request.path_params["path"]
        with self._lock:
            self.requests.append(
                {"path": path, "headers": dict(request.headers), "body": raw, "at": time.time()}
            )
        answer = self.script.next()
        if answer is not None:
            return await scripted(answer)
        secret = self.secrets.get(path)
        if secret is None:
            return self._refuse(404, "no receiver here")
        if request.headers.get("content-type") != "application/json":
            return self._refuse(415, "application/json is required")
        if not is_signed(secret, raw, request.headers.get("x-ensign-signature", ""), time.time()):
            return self._refuse(401, "bad signature")
        if not re.fullmatch(r"[0-9a-f]{32}", request.headers.get("x-ensign-event-id", "")):
            return self._refuse(400, "X-Ensign-Event-Id is required")
        try:
            if len(raw) > MAX_BODY_BYTES:
                raise Invalid("body over 1 MB")
            body = orjson.loads(raw)
            if not isinstance(body, dict) or set(body) != {"items"}:
                raise Invalid('the body is {"items": [...]}')
            items = body["items"]
            if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
                raise Invalid("1 to 500 items")
            checked = [_check_item(i) for i in items]
        except (Invalid, ValueError, TypeError) as error:
            return self._refuse(400, str(error))
        with self._lock:
            for item in checked:
                if (path, item["id"]) in self._ids:
                    self.duplicates += 1
                    continue
                self._ids.add((path, item["id"]))
                self.items.setdefault(path, []).append(item)
        return Response(b"", status_code=204)

    def _refuse(self, status: int, why: str) -> Response:
        with self._lock:
            self.refused.append((status, why))
        return Response(why, status_code=status, media_type="text/plain")


DOC = Path(__file__).resolve().parents[2] / "docs" / "destinations" / "webhook.md"


def documented_verify() -> Callable[..., bool]:
    """The `verify` function of the Python block in docs/destinations/webhook.md, exactly as
    documented, so that the tests run the code a reader would copy."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1, "the webhook doc has one Python block: the verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify
