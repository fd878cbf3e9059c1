"""The engine stays pure: importing it loads nothing from the web, storage or network stack."""

import json
import subprocess
import sys
import tomllib

from tests.conftest import REPO

# The import contract's forbidden modules (pyproject.toml, checked statically by lint-imports),
# and the Flagsmith engine and the HTTP client it would bring.
CONTRACT = next(
    c
    for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    if c["name"] == "The engine is pure"
)
FORBIDDEN = (*CONTRACT["forbidden_modules"], "requests", "flag_engine", "flagsmith")


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
