from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ensign.settings import Settings
from ensign.web.app import build_state, create_app
from ensign.web.deps import AppState
from tests.fakes.fixtures import env, segment_vendors, settings, vendors

__all__ = ["env", "segment_vendors", "settings", "strict_client", "vendors"]


@pytest.fixture
def strict_client(database_url: str) -> Iterator[tuple[TestClient, AppState]]:
    """An app with the default (production) destination rules."""
    settings = Settings(database_url=database_url, _env_file=None, delivery_in_serve=False)  # type: ignore[call-arg]
    state = build_state(settings)
    with TestClient(create_app(state=state)) as client:
        yield client, state
    state.db.dispose()
