"""Pieces every admin route module shares: registration, pagination and value parsing."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response

from ensign.errors import InvalidInput, NotFound
from ensign.services.text import check_text
from ensign.services.values import FlagValue, flag_value_from_json
from ensign.storage.pagination import Page, Window
from ensign.web.deps import State

T = TypeVar("T")
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def admin_route(
    router: APIRouter,
    path: str,
    methods: list[str],
    *,
    status_code: int = 200,
    summary: str,
    name: str | None = None,
) -> Callable[[Endpoint], Endpoint]:
    """Register an admin route under its reference path (with the trailing slash) and, hidden,
    without it: people typing curl often leave it off, and redirects lose request bodies.

    Operation ids are the endpoint's name, method and path, or with `name` (routes made for
    each destination from one function) that name and the method."""

    def register(endpoint: Endpoint) -> Endpoint:
        for method in methods:
            if name is None:
                operation_id = re.sub(r"\W+", "_", f"{endpoint.__name__}_{method}{path}")
            else:
                operation_id = f"{name}_{method}"
            # One route per method: FastAPI gives a multi-method route one operation id.
            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                status_code=status_code,
                summary=summary,
                name=name,
                operation_id=operation_id.strip("_").lower(),
            )
        router.add_api_route(
            path.rstrip("/"),
            endpoint,
            methods=methods,
            status_code=status_code,
            include_in_schema=False,
        )
        return endpoint

    return register


def no_content() -> Response:
    return Response(status_code=204)


@dataclass(frozen=True)
class Paging:
    page: int
    page_size: int

    @property
    def window(self) -> Window:
        return Window((self.page - 1) * self.page_size, self.page_size)


def paging(
    state: State,
    page: Annotated[int, Query(ge=1, le=1_000_000_000)] = 1,
    page_size: Annotated[int | None, Query(ge=1, le=1_000_000_000)] = None,
) -> Paging:
    size = page_size or state.settings.admin_page_size
    return Paging(page, min(size, state.settings.admin_max_page_size))


Pages = Annotated[Paging, Depends(paging)]


def paginated(
    request: Request, paging: Paging, page: Page[T], render: Callable[[T], dict[str, Any]]
) -> dict[str, Any]:
    """The reference's `{count, next, previous, results}` list shape."""
    last = max(1, -(-page.count // paging.page_size))
    if paging.page > last:
        raise NotFound("Invalid page.")
    url = request.url
    next_url = str(url.include_query_params(page=paging.page + 1)) if paging.page < last else None
    previous_url = str(url.include_query_params(page=paging.page - 1)) if paging.page > 1 else None
    return {
        "count": page.count,
        "next": next_url,
        "previous": previous_url,
        "results": [render(item) for item in page.items],
    }


def unpaginated(items: Sequence[T], render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    return {
        "count": len(items),
        "next": None,
        "previous": None,
        "results": [render(i) for i in items],
    }


def flag_value(raw: Any, *, field: str, max_bytes: int) -> FlagValue:
    """A flag value from JSON (contract §3.3); also takes the reference's typed-object form
    `{"type": "int", "integer_value": 3}`."""
    if isinstance(raw, dict) and "type" in raw:
        kind = raw["type"]
        source = {"int": "integer_value", "bool": "boolean_value"}.get(str(kind), "string_value")
        raw = raw.get(source)
        if raw is not None and source == "integer_value" and not isinstance(raw, int):
            raise InvalidInput(f"{field}: integer_value must be an integer.", field=field)
    value = flag_value_from_json(raw, field=field, max_bytes=max_bytes)
    if isinstance(value, str):
        check_text(value, field)
    return value


def id_list(text: str | None, *, field: str) -> list[int]:
    """Comma-separated ids from a query string, as the reference's `?tags=1,2` filter."""
    if not text:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidInput(f"{field}: expected comma-separated ids.", field=field) from None
