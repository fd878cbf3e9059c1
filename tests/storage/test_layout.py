"""Every query has its home in `ensign.storage`: no module outside it builds or runs one, and
none imports SQLAlchemy except for the `Session` type it passes along."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ensign

SOURCE = Path(ensign.__file__).parent
STORAGE = SOURCE / "storage"
QUERY_CALLS = {"select", "execute", "scalar", "scalars"}
# ORM calls on a session (`session.get(...)`, `unit.session.add(...)`): storage's too.
SESSION_CALLS = {"get", "add", "add_all", "delete", "flush", "merge", "query", "refresh"}
ALLOWED_IMPORTS = {("sqlalchemy.orm", "Session")}


def _is_session(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "session" or node.id.endswith("_session")
    return isinstance(node, ast.Attribute) and node.attr == "session"


def _violations(source: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in QUERY_CALLS:
                yield node.lineno, f"calls {name}()"
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in SESSION_CALLS
                and _is_session(func.value)
            ):
                yield node.lineno, f"calls session.{func.attr}()"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    yield node.lineno, f"imports {alias.name}"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy":
            for alias in node.names:
                if (node.module, alias.name) not in ALLOWED_IMPORTS:
                    yield node.lineno, f"imports {alias.name} from {node.module}"


def test_layout__modules_outside_storage__run_no_queries_nor_orm_calls_and_import_only_session() -> (
    None
):
    found = [
        f"{path.relative_to(SOURCE.parent)}:{line} {what}"
        for path in sorted(SOURCE.rglob("*.py"))
        if STORAGE not in path.parents
        for line, what in _violations(path.read_text())
    ]
    assert found == []


def test_layout__a_query_outside_storage__is_reported() -> None:
    # Given: a module that queries as services used to
    source = (
        "import sqlalchemy\n"
        "from sqlalchemy import select\n"
        "from sqlalchemy.orm import Session\n"
        "def first(session: Session) -> object:\n"
        "    session.execute(select(2))\n"
        "    return session.scalars(select(1))\n"
        "def second(unit: object, row: object) -> object:\n"
        "    unit.session.add(row)\n"
        "    return session.get(int, 1)\n"
    )
    # Then: each query and import is reported, and the Session import is not
    assert sorted(_violations(source)) == [
        (1, "imports sqlalchemy"),
        (2, "imports select from sqlalchemy"),
        (5, "calls execute()"),
        (5, "calls select()"),
        (6, "calls scalars()"),
        (6, "calls select()"),
        (8, "calls session.add()"),
        (9, "calls session.get()"),
    ]
