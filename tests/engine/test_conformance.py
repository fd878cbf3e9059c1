"""Every engine-test-data case (v3.9.0), through both the one-shot and the compiled path."""

from pathlib import Path
from typing import Any

import pyjson5
import pytest

from ensign.engine import compile_environment, evaluate

from .conftest import engine_test_data

DATA = engine_test_data()
_MISSING = "engine-test-data not found: set ENSIGN_ENGINE_TEST_DATA"
CASES = (
    [pytest.param(path, id=path.name) for path in sorted((DATA / "test_cases").iterdir())]
    if DATA
    else [pytest.param(None, id="no-data", marks=pytest.mark.skip(reason=_MISSING))]
)


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = pyjson5.decode(path.read_text(encoding="utf-8"))
    return case


@pytest.fixture(autouse=True)
def _require_data() -> None:
    if DATA is None:
        pytest.skip(_MISSING)


def test_conformance__data__has_every_case() -> None:
    assert len(CASES) == 199


@pytest.mark.parametrize("path", CASES)
def test_evaluate__conformance_case__matches_expected_result(path: Path) -> None:
    case = _load(path)
    assert evaluate(case["context"]) == case["result"]


@pytest.mark.parametrize("path", CASES)
def test_compiled__conformance_case__matches_expected_result(path: Path) -> None:
    case = _load(path)
    context = dict(case["context"])
    identity = context.pop("identity", None)
    assert compile_environment(context).evaluate_identity(identity) == case["result"]
