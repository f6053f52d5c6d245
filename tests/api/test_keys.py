from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from apitest import ApiClient

from ..conftest import Cli

Keys = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def _keys(run_cli: Cli) -> Keys:
    """``_keys(db_url, *args)``: ``stadtpuls keys ARGS`` on that database."""
    return lambda db_url, *args: run_cli(db_url, "keys", *args)


def test_keys_cli_create_list_revoke(client: ApiClient, clean_db: str, _keys: Keys) -> None:
    made = _keys(clean_db, "create", "--role", "operator", "--name", "depot tablet")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("sp_") and "shown only now" in made.stderr
    assert client.get("/api/v1/waste/bins", headers={"X-API-Key": key}).status_code == 200
    listed = _keys(clean_db, "list")
    key_id = key.split("_")[1]
    assert key_id in listed.stdout and "depot tablet" in listed.stdout and key not in listed.stdout
    assert _keys(clean_db, "revoke", key_id).returncode == 0
    assert client.get("/api/v1/waste/bins", headers={"X-API-Key": key}).status_code == 401
    assert key_id not in _keys(clean_db, "list").stdout
    assert key_id in _keys(clean_db, "list", "--all").stdout
    gone = _keys(clean_db, "revoke", key_id)
    assert gone.returncode == 1 and "no active key" in gone.stderr


def test_keys_cli_reports_unreachable_database(_keys: Keys) -> None:
    r = _keys("postgresql://postgres@127.0.0.1:1/none", "list")
    assert r.returncode == 1 and "cannot connect" in r.stderr
