"""A request body that is not JSON: the answer says where, by line and column."""

from __future__ import annotations

import pytest

from tests.admin.conftest import Admin


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(
            '{"name": }', "Invalid JSON at line 1 column 10: expecting value.", id="one-line"
        ),
        pytest.param(
            '{\n  "name": "Shop",\n  hide_disabled_flags: true\n}',
            "Invalid JSON at line 3 column 3: expecting property name enclosed in double quotes.",
            id="third-line",
        ),
    ],
)
def test_body__not_json__400_with_line_and_column_and_no_field(
    admin: Admin, body: str, detail: str
) -> None:
    response = admin.client.post(
        "/api/v1/projects/",
        content=body,
        headers={**admin.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json() == {"error": "invalid", "detail": detail}
    assert admin.get("/api/v1/projects/").json()["count"] == 0
