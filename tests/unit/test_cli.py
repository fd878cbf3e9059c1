"""The `ensign` command, run as an operator runs it, on an empty database file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ensign.cli import app
from tests.documents import standard_document

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Settings come from the environment, as in production; the CLI is not patched.
    database = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("ENSIGN_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.chdir(tmp_path)
    return database


def test_migrate__empty_file__created_at_head(env: Path) -> None:
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    assert env.exists()


def test_api_key_create__empty_database__prints_a_working_key(env: Path) -> None:
    from fastapi.testclient import TestClient

    from ensign.settings import Settings
    from ensign.web.app import create_app

    result = runner.invoke(app, ["api-key", "create", "--name", "ops"])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    assert key.startswith("ens_")
    with TestClient(create_app(Settings())) as client:
        response = client.get("/api/v1/organisations/", headers={"Authorization": f"Api-Key {key}"})
        assert response.status_code == 200
        assert response.json()["count"] == 1


def test_import__document__prints_keys_and_serves_its_flags(env: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from ensign.settings import Settings
    from ensign.web.app import create_app

    document = standard_document()
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document))
    result = runner.invoke(app, ["import", str(path), "--project", "Imported"])
    assert result.exit_code == 0, result.output
    keys = json.loads(result.output)
    assert set(keys) == {"project_id", "environment_key", "server_key"}
    assert keys["environment_key"] == document["api_key"]
    assert keys["server_key"].startswith("ser.")
    with TestClient(create_app(Settings())) as client:
        flags = client.get(
            "/api/v1/flags/", headers={"X-Environment-Key": keys["environment_key"]}
        ).json()
        assert {f["feature"]["name"]: f["feature_state_value"] for f in flags}["banner"] == "hello"


def test_import__unreadable_file__exit_1_with_message(env: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert "cannot read" in result.output


def test_import__not_a_document__exit_1_naming_the_field(env: Path, tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"name": "x"}))
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert "project" in result.output


def test_import__enabled_is_banana__exit_1_naming_the_path(env: Path, tmp_path: Path) -> None:
    document = standard_document()
    document["feature_states"][3]["enabled"] = "banana"
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document))
    result = runner.invoke(app, ["import", str(path)])
    assert result.exit_code == 1
    assert "feature_states[3].enabled: must be a boolean." in result.output


def test_demo__empty_then_seeded__seeds_once(env: Path) -> None:
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    assert "Seeded a demo project" in first.output
    assert "development_user_123456" in first.output
    second = runner.invoke(app, ["demo"])
    assert second.exit_code == 0
    assert "nothing seeded" in second.output


def test_demo__seeded_before__says_how_to_sign_in_with_the_demo_user(env: Path) -> None:
    runner.invoke(app, ["demo"])

    again = runner.invoke(app, ["demo"])

    assert again.exit_code == 0, again.output
    assert "Sign in:   admin@example.com" in again.output
    assert "user set-password --email admin@example.com" in again.output
    assert "add a user" not in again.output


def test_demo__projects_but_no_demo_user__says_how_to_add_one(env: Path, tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(standard_document()))
    runner.invoke(app, ["import", str(path)])

    result = runner.invoke(app, ["demo"])

    assert result.exit_code == 0, result.output
    assert "Add a user with: scripts/ensign user create --email" in result.output
    assert "admin@example.com" not in result.output
