"""The npm OFREP web provider (`@openfeature/ofrep-web-provider`), run under Node without a
browser against a real `ensign serve`. Skipped where Node or the pinned packages are absent:
`npm ci --prefix tests/e2e/ofrep_web` installs them (scripts/bootstrap does, when npm exists)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess
from tests.e2e.test_ofrep_provider import keys

pytestmark = pytest.mark.slow

__all__ = ["keys"]

HERE = Path(__file__).parent / "ofrep_web"


def web_provider(server: ServerProcess, key: str, context: dict[str, Any], *flags: str) -> Any:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (HERE / "node_modules" / "@openfeature" / "ofrep-web-provider").exists():
        pytest.skip(f"run `npm ci --prefix {HERE.relative_to(Path.cwd())}` to install the provider")
    result = subprocess.run(
        [node, str(HERE / "evaluate.mjs"), server.url, key, json.dumps(context), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_web_provider__bulk_evaluation__values_reasons_variants(
    server: ServerProcess, keys: dict[str, Any]
) -> None:
    context = {"targetingKey": "js-user", "plan": "gold"}
    flags = ("banner:string", "limit:number", "beta:boolean", "layout:object", "nope:string")
    details = web_provider(server, keys["environment_key"], context, *flags)
    assert details["banner"]["value"] == "hello gold"
    assert details["banner"]["reason"] == "TARGETING_MATCH"
    assert (details["limit"]["value"], details["limit"]["reason"]) == (10, "STATIC")
    assert (details["beta"]["value"], details["beta"]["variant"]) == (True, "on")
    assert details["layout"]["value"] == {"columns": 3}
    assert details["banner"]["flagMetadata"] == {"featureId": 1}
    assert details["nope"]["errorCode"] == "FLAG_NOT_FOUND"


def test_web_provider__no_targeting_key__targeted_flags_fail(
    server: ServerProcess, keys: dict[str, Any]
) -> None:
    details = web_provider(server, keys["environment_key"], {}, "banner:string", "limit:number")
    assert details["banner"]["errorCode"] == "TARGETING_KEY_MISSING"
    assert details["limit"]["value"] == 10
