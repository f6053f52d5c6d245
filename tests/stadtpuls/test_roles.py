"""Least privilege in the database (migration 0007_roles): each service role connects and is refused what it must
not do, and does its real work. Every relation of the schema has its grants decided here: a new table or view
fails :func:`test_every_relation_has_exactly_the_decided_grants` until its migration grants it and this table
lists it."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import errors, sql

from stadtpuls.dashboards.build import DASHBOARD_DIR, PROVISIONING
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.pipeline import Pipeline
from stadtpuls.ingest.registry import load_registry
from stadtpuls.ingest.writer import Writer
from stadtpuls.migrate import SERVICE_ROLES, migrate
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from apitest import ADMIN, OP, ApiClient, make_settings  # noqa: E402

PASSWORDS = {service: f"{service}-pw-7c1e" for service in SERVICE_ROLES}
R, W, RW, RWD = (
    {"SELECT"},
    {"SELECT", "INSERT"},
    {"SELECT", "INSERT", "UPDATE"},
    {"SELECT", "INSERT", "UPDATE", "DELETE"},
)
# relation -> (ingest, api, grafana)
GRANTS: dict[str, tuple[set[str], set[str], set[str]]] = {
    "sites": (R, RWD, R),
    "devices": (R, RWD, R),
    "api_keys": (set(), RW, set()),
    "uplinks": (W, R, R),
    "bin_levels": (W, R, R),
    "parking_events": (W, R, R),
    "passenger_counts": (W, R, R),
    "environment_readings": (W, R, set()),
    "dead_letters": (RW, R, R),
    "device_state": (RW, R, set()),
    "fcnt_gaps": ({"SELECT", "INSERT", "DELETE"}, R, R),
    "schema_migrations": (set(), R, set()),
    "uplinks_hourly": (set(), R, R),
    "bin_levels_hourly": (set(), R, set()),
    "parking_hourly": (set(), R, set()),
    "passengers_hourly": (set(), R, R),
    "environment_hourly": (set(), R, set()),
    "codec_scripts": (R, {"SELECT", "UPDATE"}, set()),
    "uplink_decoded": (W, R, set()),
    "source_cursors": ({"SELECT", "INSERT", "UPDATE"}, R, set()),
    "backfill_gaps": (W, R, set()),
    "fcnt_gaps_closed": (W, R, set()),
    "tenants": (R, RW, set()),
    "rollup_dirty": ({"SELECT", "INSERT", "DELETE"}, R, set()),
    "parking_lot_hourly": (RWD, R, R),
    "line_load_hourly": (RWD, R, R),
    "parking_lot_daily": (RWD, R, set()),
    "line_load_daily": (RWD, R, R),
    "parking_lot_15min": (RWD, R, set()),
    "line_load_15min": (RWD, R, set()),
    "bin_fill_hourly": (RWD, R, R),
    "bin_fill_daily": (RWD, R, R),
    "history_fragments": ({"SELECT", "DELETE"}, W, set()),  # the API keeps days' text, the rollup job forgets it
    "alert_rules": (set(), RWD, R),
    "notification_channels": (set(), RWD, set()),
    "alerts": (set(), RW, R),
    "alert_events": (set(), RW, set()),
    "notifications": (set(), RW, set()),
    "device_daily": (set(), set(), set()),
    "device_health": (set(), set(), set()),
    "ingest_status": (set(), set(), set()),
    "alert_summary_state": (set(), set(), set()),
    "device_summary_seen": (set(), set(), set()),
    "parking_window_state": (set(), set(), set()),
    "parking_window": (set(), set(), set()),
}
# relation -> the alerts service's grants (0015, 0018); a relation not listed: none
ALERTS: dict[str, set[str]] = {
    "sites": R,
    "devices": R,
    "device_state": R,
    "uplinks": R,
    "bin_levels": R,
    "parking_events": R,
    "environment_readings": R,
    "fcnt_gaps": R,
    "dead_letters": R,
    "device_daily": RWD,
    "device_health": RWD,
    "ingest_status": RWD,
    "alert_summary_state": RW,
    "device_summary_seen": RW,
    "parking_window_state": RWD,
    "parking_window": RWD,
    "alert_rules": RW,
    "notification_channels": R,
    "alerts": RW,
    "alert_events": RW,
    "notifications": RW,
}
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
APP = "00000000-0000-0000-0000-00000000000a"
FLEET = """
sites:
  - {site_id: lot-1, kind: lot, capacity: 5}
  - {site_id: space-1, kind: space, parent_id: lot-1}
devices:
  - {dev_eui: "1000000000000001", codec: nwave/nps405, site_id: space-1}
"""


def _as(url: str, service: str) -> str:
    parts = urlsplit(url)
    netloc = f"{SERVICE_ROLES[service]}:{PASSWORDS[service]}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
def role_url(db_url: str) -> Iterator[dict[str, str]]:
    """The session database as each service role, LOGIN and passwords set by ``migrate``."""
    migrate(db_url, role_passwords=PASSWORDS)
    yield {service: _as(db_url, service) for service in SERVICE_ROLES}


def _refused(url: str, statement: str) -> None:
    with psycopg.connect(url) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_migrate_gives_the_roles_login_with_a_scram_password(role_url: dict[str, str], db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
            " WHERE rolname = ANY(%s) ORDER BY 1",
            (list(SERVICE_ROLES.values()),),
        ).fetchall()
    assert rows == [(r, True, False, False, False) for r in sorted(SERVICE_ROLES.values())]
    for service, url in role_url.items():
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (SERVICE_ROLES[service],)


def test_every_relation_has_exactly_the_decided_grants(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        relations = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            )
        }
        undecided = relations - set(GRANTS)
        assert not undecided, f"grant {sorted(undecided)} to the roles in its migration, then list it in GRANTS"
        assert set(ALERTS) <= set(GRANTS)
        for relation, wanted in GRANTS.items():
            roles = [SERVICE_ROLES[s] for s in ("ingest", "api", "grafana", "alerts")]
            for service, privileges in zip(roles, (*wanted, ALERTS.get(relation, set())), strict=True):
                held = {
                    p
                    for p in PRIVILEGES
                    if conn.execute("SELECT has_table_privilege(%s, %s, %s)", (service, relation, p)).fetchone()[0]
                }
                assert held == privileges, f"{service} on {relation}"


def _dashboard_sql() -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("rawSql", "query", "definition") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted((PROVISIONING / DASHBOARD_DIR).glob("*.json")):
        walk(json.loads(path.read_text()))
    return found


def test_grafana_reads_exactly_what_the_dashboards_query() -> None:
    text = "\n".join(_dashboard_sql())
    queried = {name for name in GRANTS if re.search(rf"\b{name}\b", text)}
    readable = {name for name, (_, _, grafana) in GRANTS.items() if "SELECT" in grafana}
    assert queried == readable
    assert "api_keys" not in readable


FORBIDDEN = [
    ("ingest", "SELECT * FROM api_keys"),
    ("ingest", "UPDATE devices SET codec = 'x'"),
    ("ingest", "INSERT INTO sites (site_id, kind) VALUES ('evil', 'lot')"),
    ("ingest", "DELETE FROM uplinks"),
    ("ingest", "TRUNCATE dead_letters"),
    ("ingest", "CREATE TABLE evil (x int)"),
    ("api", "INSERT INTO parking_events (time, dev_eui, occupied) VALUES (now(), '1000000000000001', true)"),
    ("api", "DELETE FROM uplinks"),
    ("api", "UPDATE dead_letters SET reason = ''"),
    ("api", "DELETE FROM api_keys"),
    ("api", "CREATE TABLE evil (x int)"),
    ("grafana", "SELECT * FROM api_keys"),
    ("grafana", "SELECT * FROM device_state"),
    ("grafana", "INSERT INTO sites (site_id, kind) VALUES ('evil', 'lot')"),
    ("alerts", "SELECT * FROM api_keys"),
    ("alerts", "UPDATE devices SET codec = 'x'"),
    ("alerts", "DELETE FROM uplinks"),
    ("alerts", "INSERT INTO bin_levels (time, dev_eui, fill_pct) VALUES (now(), '1000000000000001', 99)"),
    ("alerts", "DELETE FROM alerts"),
    ("alerts", "UPDATE notification_channels SET target = 'https://evil.example/'"),
    ("alerts", "CREATE TABLE evil (x int)"),
]


@pytest.mark.parametrize(("service", "statement"), FORBIDDEN, ids=[f"{s}: {q[:40]}" for s, q in FORBIDDEN])
def test_each_role_is_refused_what_it_must_not_do(role_url: dict[str, str], service: str, statement: str) -> None:
    """The ingest never reads keys nor changes the registry; the API never writes readings; Grafana never reads
    keys; the alerts service never reads keys, never changes the registry, the readings or the channels."""
    _refused(role_url[service], statement)


def test_grafana_reads_the_dashboards_relations(role_url: dict[str, str]) -> None:
    with psycopg.connect(role_url["grafana"]) as conn:
        for name, (_, _, grafana) in GRANTS.items():
            if grafana:
                conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()


def _uplink(f_cnt: int, seconds: int, dev: str = "1000000000000001") -> tuple[str, bytes]:
    from datetime import UTC, datetime, timedelta

    import orjson

    msg = chirpstack_uplink(
        dev_eui=dev,
        application_id=APP,
        time=datetime(2026, 3, 2, 7, tzinfo=UTC) + timedelta(seconds=seconds),
        f_port=1,
        payload=b"\x01",
        f_cnt=f_cnt,
    )
    return chirpstack_topic(APP, dev), orjson.dumps(msg)


def test_the_ingest_writes_a_batch_as_its_role(role_url: dict[str, str], clean_db: str) -> None:
    with psycopg.connect(clean_db) as conn:
        apply(conn, parse_text(FLEET, "yaml"))
    url = role_url["ingest"]
    with psycopg.connect(url) as conn:
        pipeline = Pipeline(load_registry(conn))
    writer = Writer(url)
    messages = [_uplink(1, 0), _uplink(5, 60), _uplink(6, 120), (chirpstack_topic(APP, "ff"), b"not json")]
    prepared = pipeline.prepare([t for t, _ in messages], [p for _, p in messages], time.time())
    result = writer.write(prepared.batch)
    writer.write(prepared.batch)  # redelivered: dead letter counted again, readings not doubled
    late = pipeline.prepare([_uplink(3, 30)[0]], [_uplink(3, 30)[1]], time.time())
    writer.write(late.batch)  # a late frame fills part of the gap it falls into (the gap rows are replaced)
    writer.close()
    assert (result.stored, result.domain["parking_events"], result.gaps) == (3, 3, 1)
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM parking_events").fetchone() == (4,)
        assert conn.execute("SELECT repeats FROM dead_letters").fetchone() == (2,)
        assert conn.execute("SELECT last_f_cnt FROM device_state").fetchone() == (6,)
        assert conn.execute("SELECT sum(missing) FROM fcnt_gaps").fetchone() == (2,)


def test_the_alerts_service_runs_a_round_as_its_role(role_url: dict[str, str], clean_db: str) -> None:
    """Default rules, the day summaries, an alert opened with its event and queued notification, and the day's
    digest, as stadtpuls_alerts."""
    from datetime import UTC, datetime, timedelta

    from stadtpuls.alerts.service import AlertService, ensure_default_rules
    from stadtpuls.settings import load

    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        apply(conn, parse_text(FLEET, "yaml"))
        conn.execute(
            "INSERT INTO notification_channels (channel_id, kind, target, digest_hour)"
            " VALUES ('crew', 'email', 'crew@town.example', 7)"
        )
        conn.execute(
            "INSERT INTO parking_events (time, dev_eui, lot_id, occupied, battery_v)"
            " VALUES (%s, %s, 'lot-1', true, 2.9)",
            (now - timedelta(hours=1), "1000000000000001"),
        )
        conn.execute("INSERT INTO device_state (dev_eui, last_time) VALUES ('1000000000000001', %s)", (now,))
    settings = load(database_url=role_url["alerts"], alerts_metrics_port=0)
    service = AlertService(settings, role_url["alerts"])
    try:
        with psycopg.connect(role_url["alerts"], autocommit=True) as conn:
            ensure_default_rules(conn, settings)
            report = service.round(conn, now)
            assert conn.execute("SELECT current_user").fetchone() == ("stadtpuls_alerts",)
    finally:
        service.sender.close()
    assert report.evaluated.failed == {}
    assert report.evaluated.summarized >= 1
    assert report.evaluated.opened["battery-low"] == 1
    assert report.digests == 1  # 07:00 Berlin has passed: the day's digest is queued
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM notifications").fetchone() == (2,)
        assert conn.execute("SELECT battery_v_min FROM device_daily").fetchone() == (pytest.approx(2.9),)


def test_the_api_serves_and_manages_configuration_as_its_role(role_url: dict[str, str], clean_db: str) -> None:
    client = ApiClient(create_app_for(role_url["api"]))
    try:
        health = client.get("/health").json()
        assert health["database"] is True and health["mode"] == "postgresql"
        site = {"site_id": "lot-x", "kind": "lot", "name": "Markt", "capacity": 4}
        assert client.post("/api/v1/sites", headers=OP, json=site).status_code == 201
        assert client.get("/api/v1/parking/lots").json()["count"] == 1
        r = client.post("/api/v1/keys", headers=ADMIN, json={"role": "operator", "name": "tablet"})
        assert r.status_code == 201, r.text
        assert client.get("/api/v1/sites", headers={"X-API-Key": r.json()["key"]}).status_code == 200
        assert client.delete(f"/api/v1/keys/{r.json()['key_id']}", headers=ADMIN).status_code in (200, 204)
        assert client.get("/api/v1/dead-letters", headers=OP).status_code == 200
        assert client.get("/metrics", headers=OP).status_code == 200
    finally:
        client.close()


def create_app_for(url: str) -> Any:
    from stadtpuls.api.main import create_app

    return create_app(make_settings(url))


@pytest.mark.timescaledb
def test_timescaledb_chunks_and_continuous_aggregates_follow_the_grants(
    timescaledb: str, role_url: dict[str, str]
) -> None:
    """Grants on a hypertable reach its chunks, and on a continuous aggregate its materialisation."""
    with psycopg.connect(role_url["ingest"]) as conn:
        conn.execute(
            "INSERT INTO parking_events (time, dev_eui, occupied) VALUES ('2020-01-01', '10000000000000ff', true)"
        )
    with psycopg.connect(timescaledb, autocommit=True) as conn:
        conn.execute("CALL refresh_continuous_aggregate('parking_hourly', NULL, NULL)")
    with psycopg.connect(role_url["grafana"]) as conn:
        assert conn.execute("SELECT count(*) FROM parking_hourly").fetchone()[0] >= 1
    _refused(role_url["api"], "INSERT INTO parking_events (time, dev_eui, occupied) VALUES (now(), 'x', true)")
    with psycopg.connect(timescaledb) as conn:
        conn.execute("DELETE FROM parking_events WHERE dev_eui = '10000000000000ff'")


def test_the_town_group_cannot_log_in_and_no_service_role_is_a_town_reader(
    role_url: dict[str, str], db_url: str
) -> None:
    """0016_tenant_rls restricts members of stadtpuls_town to their tenant's rows: a service role must never be one."""
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'stadtpuls_town'").fetchone() == (False,)
        for role in SERVICE_ROLES.values():
            member = conn.execute("SELECT pg_has_role(%s, 'stadtpuls_town', 'MEMBER')", (role,)).fetchone()
            assert member == (False,), role
