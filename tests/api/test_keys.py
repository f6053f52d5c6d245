from __future__ import annotations

import os
import subprocess
import sys

from apitest import ApiClient


def _keys(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STADTPULS_DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "stadtpuls.cli", "keys", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_keys_cli_create_list_revoke(client: ApiClient, clean_db: str) -> None:
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


def test_keys_cli_reports_unreachable_database() -> None:
    r = _keys("postgresql://postgres@127.0.0.1:1/none", "list")
    assert r.returncode == 1 and "cannot connect" in r.stderr
