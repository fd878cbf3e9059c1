"""The engine stays pure: importing it loads nothing from the web, storage or network stack."""

import json
import subprocess
import sys

FORBIDDEN = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "pydantic",
    "jinja2",
    "typer",
    "requests",
    "ensign.storage",
    "ensign.services",
    "ensign.web",
    "ensign.integrations",
    "ensign.delivery",
    "ensign.cli",
    "ensign.settings",
    "flag_engine",
    "flagsmith",
)


def test_import__engine__loads_no_forbidden_module() -> None:
    script = (
        "import json, sys; import ensign.engine, ensign.engine.mapping; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", script], text=True))
    offending = [
        name for name in loaded if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    ]
    assert offending == []
