"""Each town's Grafana reads only its town (migration 0016_tenant_rls): two towns seeded with rows in every
relation the dashboards query, each town's reader role logged in with its password sees exactly its own rows
(compared with the owner's filtered rows), is refused every write and every way around the filter, and the hub's
roles still see and write everything."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
import pytest
from psycopg import errors, sql

from stadtpuls.dashboards.build import DASHBOARD_DIR, PROVISIONING
from stadtpuls.dashboards.macros import QueryContext, auto_interval, expand
from stadtpuls.ingest.envelopes.keys import stored_key
from stadtpuls.ingest.pipeline import Pipeline
from stadtpuls.ingest.registry import load_registry
from stadtpuls.ingest.writer import Writer
from stadtpuls.migrate import SERVICE_ROLES, migrate
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink
from stadtpuls.tenant_roles import TOWN_GROUP, ensure_town_reader, reader_role

NOW = datetime.now(UTC).replace(microsecond=0)
APP = "00000000-0000-0000-0000-00000000000b"
UNKNOWN = "ffffffffffffff01"  # a device in no registry
HUB_PASSWORDS = {service: f"{service}-pw-16rls" for service in SERVICE_ROLES}
_DEVS = "(SELECT dev_eui FROM devices WHERE tenant = %(t)s)"
_SITES = "(SELECT site_id FROM sites WHERE tenant = %(t)s)"
# relation -> (key of a row, the owner's condition for the rows of tenant %(t)s; None: shared by every town)
ROWS: dict[str, tuple[str, str | None]] = {
    "sites": ("site_id", "tenant = %(t)s"),
    "devices": ("dev_eui", "tenant = %(t)s"),
    "uplinks": ("dedup_key::text", f"dev_eui IN {_DEVS}"),
    "bin_levels": ("dev_eui || time", f"dev_eui IN {_DEVS}"),
    "parking_events": ("dev_eui || time", f"dev_eui IN {_DEVS}"),
    "passenger_counts": ("dev_eui || time", f"dev_eui IN {_DEVS}"),
    "dead_letters": ("id::text", f"dev_eui IN {_DEVS}"),
    "fcnt_gaps": ("dev_eui || time", f"dev_eui IN {_DEVS}"),
    "uplinks_hourly": ("dev_eui || bucket || uplinks", f"dev_eui IN {_DEVS}"),
    "passengers_hourly": ("dev_eui || bucket || readings", f"dev_eui IN {_DEVS}"),
    "parking_lot_hourly": ("lot_id || bucket", f"lot_id IN {_SITES}"),
    "line_load_hourly": ("line_id || bucket", f"line_id IN {_SITES}"),
    "line_load_daily": ("line_id || bucket", f"line_id IN {_SITES}"),
    "bin_fill_hourly": ("site_id || bucket", f"site_id IN {_SITES}"),
    "bin_fill_daily": ("site_id || bucket", f"site_id IN {_SITES}"),
    "alert_rules": ("rule_id", None),
    "alerts": ("alert_id::text", f"dev_eui IN {_DEVS} OR site_id IN {_SITES}"),
}


@dataclass(frozen=True)
class Towns:
    owner: str  # the owner's URL
    slugs: dict[str, str]  # "a" | "b" -> tenant slug
    readers: dict[str, str]  # "a" | "b" -> the town reader's URL (logged in with its password)
    devices: dict[str, list[str]]


def _login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port or 5432}"))


def _seed_town(conn: psycopg.Connection, key: str, slug: str) -> list[str]:
    """Sites of every kind, a device per sensor kind, and rows in every time series of the dashboards."""
    n = {"a": 1, "b": 2}[key]
    devs = [f"{n:x}{k:015x}" for k in range(1, 5)]  # bin, space, vehicle, and one without readings
    bin_, lot, space, line, vehicle = (f"{key}-{kind}-{slug[-6:]}" for kind in ("bin", "lot", "space", "line", "bus"))
    conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s)", (slug, f"Town {key.upper()}"))
    for site, kind, parent in ((bin_, "bin", None), (lot, "lot", None), (space, "space", lot), (line, "line", None)):
        conn.execute(
            "INSERT INTO sites (site_id, kind, name, parent_id, tenant, waste_type, capacity)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (site, kind, site, parent, slug, "paper" if kind == "bin" else None, 1 if kind == "lot" else None),
        )
    conn.execute("INSERT INTO sites (site_id, kind, tenant) VALUES (%s, 'vehicle', %s)", (vehicle, slug))
    for dev, site in zip(devs, (bin_, space, vehicle, None), strict=True):
        conn.execute(
            "INSERT INTO devices (dev_eui, codec, site_id, tenant) VALUES (%s, 'nwave/nps405', %s, %s)",
            (dev, site, slug),
        )
    for h in range(1, 7):
        t = NOW - timedelta(hours=h, minutes=n)
        for f_cnt, dev in enumerate(devs[:3]):
            conn.execute(
                "INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, rssi, snr, lns, received_at)"
                " VALUES (%s, %s, %s, %s, -90, 7, 'chirpstack-v4', %s)",
                (t, stored_key(uuid.uuid4().bytes), dev, h * 10 + f_cnt, t + timedelta(seconds=2)),
            )
        conn.execute(
            "INSERT INTO bin_levels (time, dev_eui, site_id, fill_pct, battery_v) VALUES (%s, %s, %s, %s, 3.6)",
            (t, devs[0], bin_, 90 - h * 5),
        )
        conn.execute(
            "INSERT INTO parking_events (time, dev_eui, site_id, lot_id, occupied) VALUES (%s, %s, %s, %s, %s)",
            (t, devs[1], space, lot, h % 2 == 0),
        )
        conn.execute(
            "INSERT INTO passenger_counts (time, dev_eui, site_id, line_id, pax_in, pax_out, pax_count)"
            " VALUES (%s, %s, %s, %s, 3, 1, %s)",
            (t, devs[2], vehicle, line, 10 + h),
        )
    conn.execute(
        "INSERT INTO fcnt_gaps (time, dev_eui, f_cnt_from, f_cnt_to) VALUES (%s, %s, 3, 4)",
        (NOW - timedelta(hours=2), devs[0]),
    )
    conn.execute("INSERT INTO dead_letters (stage, reason, dev_eui) VALUES ('codec', 'short payload', %s)", (devs[1],))
    conn.execute(
        "INSERT INTO alerts (rule_id, subject, dev_eui, site_id, severity, state, opened_at)"
        " VALUES ('rls-battery', %s, %s, %s, 'warning', 'open', %s),"
        " ('rls-full', %s, NULL, %s, 'info', 'open', %s)",
        (devs[0], devs[0], bin_, NOW - timedelta(hours=1), bin_, bin_, NOW - timedelta(hours=1)),
    )
    return devs


@pytest.fixture
def towns(clean_db: str) -> Iterator[Towns]:
    """Towns a and b (slugs unique to this test: roles belong to the whole server), their readers, hub rows that
    belong to no town (a dead letter of an unknown device, a hub alert); the hub roles get passwords."""
    migrate(clean_db, role_passwords=HUB_PASSWORDS)
    tag = uuid.uuid4().hex[:6]
    slugs = {key: f"rls-{key}-{tag}" for key in ("a", "b")}
    readers: dict[str, str] = {}
    devices: dict[str, list[str]] = {}
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "INSERT INTO alert_rules (rule_id, kind) VALUES ('rls-battery', 'battery_low'), ('rls-full', 'bin_full'),"
            " ('rls-lag', 'ingest_lag')"
        )
        for key, slug in slugs.items():
            devices[key] = _seed_town(conn, key, slug)
        conn.execute("INSERT INTO dead_letters (stage, reason, dev_eui) VALUES ('device', 'unknown', %s)", (UNKNOWN,))
        conn.execute(
            "INSERT INTO alerts (rule_id, subject, severity, state, opened_at)"
            " VALUES ('rls-lag', 'hub', 'critical', 'open', %s)",
            (NOW,),
        )
        conn.execute("SELECT rollups_build()")
        for key, slug in slugs.items():
            password = f"town-{key}-{tag}"
            readers[key] = _login(clean_db, ensure_town_reader(conn, slug, password), password)
    try:
        yield Towns(clean_db, slugs, readers, devices)
    finally:
        with psycopg.connect(clean_db, autocommit=True) as conn:
            for slug in slugs.values():
                conn.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(
                        sql.Identifier("stadtpuls_grafana_" + slug.replace("-", "_"))
                    )
                )


def _keys(conn: psycopg.Connection, relation: str, where: str | None = None, **params: str) -> list[str]:
    key, _ = ROWS[relation]
    query = f"SELECT {key} FROM {relation}" + (f" WHERE {where}" if where else "")
    return sorted(str(r[0]) for r in conn.execute(query.encode(), params or None))  # type: ignore[arg-type]


def _hub_url(url: str, service: str) -> str:
    return _login(url, SERVICE_ROLES[service], HUB_PASSWORDS[service])


def test_relations_the_dashboards_read_are_exactly_those_checked_here(db_url: str) -> None:
    """Every relation the hub's Grafana may read is in ROWS: a new one must decide what a town sees of it."""
    with psycopg.connect(db_url) as conn:
        readable = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
                " AND has_table_privilege('stadtpuls_grafana', c.oid, 'SELECT')"
            )
        }
        town = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = ANY(ARRAY['public', 'town'])"
                " AND has_table_privilege(%s, c.oid, 'SELECT')",
                (TOWN_GROUP,),
            )
        }
        filtered = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE (n.nspname = 'public' AND c.relrowsecurity AND NOT c.relforcerowsecurity)"
                " OR (n.nspname = 'town' AND c.relkind = 'v' AND 'security_barrier=true' = ANY(c.reloptions))"
            )
        }
    assert readable == set(ROWS)
    assert town == set(ROWS), "the town group reads what the hub's Grafana reads, nothing more"
    shared = {name for name, (_, cond) in ROWS.items() if cond is None}
    assert set(ROWS) - shared <= filtered, "every town-readable relation but the shared ones is filtered"


def test_each_town_view_has_the_columns_of_its_relation(db_url: str) -> None:
    columns = (
        "SELECT table_name, array_agg(column_name::text || ' ' || data_type ORDER BY ordinal_position)"
        " FROM information_schema.columns WHERE table_schema = %s GROUP BY 1"
    )
    with psycopg.connect(db_url) as conn:
        town = dict(conn.execute(columns, ("town",)).fetchall())
        public = dict(conn.execute(columns, ("public",)).fetchall())
    assert len(town) == 11
    for name, cols in town.items():
        assert cols == public[name], name


def test_each_town_reader_sees_exactly_its_own_rows(towns: Towns) -> None:
    with psycopg.connect(towns.owner) as owner:
        for key, url in towns.readers.items():
            other = towns.slugs["b" if key == "a" else "a"]
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (reader_role(towns.slugs[key]),)
                for relation, (_, cond) in ROWS.items():
                    seen = _keys(conn, relation)
                    assert seen, f"{key} sees nothing in {relation}"
                    assert seen == _keys(owner, relation, cond, t=towns.slugs[key]), f"{key}: {relation}"
                    if cond is not None:
                        assert not set(seen) & set(_keys(owner, relation, cond, t=other)), f"{key}: {relation}"
                        assert len(seen) < len(_keys(owner, relation)), f"{key}: {relation}"


def test_a_town_member_without_a_tenant_sees_no_row(towns: Towns) -> None:
    role = f"stadtpuls_town_orphan_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(towns.owner, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(role), sql.Identifier(TOWN_GROUP))
        )
        conn.execute(sql.SQL("ALTER ROLE {} SET search_path = town, public").format(sql.Identifier(role)))
    try:
        with psycopg.connect(_login(towns.owner, role, "x")) as conn:
            for relation, (_, cond) in ROWS.items():
                assert (_keys(conn, relation) == []) == (cond is not None), relation
    finally:
        with psycopg.connect(towns.owner, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


REFUSED = [
    "INSERT INTO sites (site_id, kind) VALUES ('evil', 'lot')",
    "UPDATE devices SET name = 'x'",
    "DELETE FROM dead_letters",
    "DELETE FROM alerts",
    "UPDATE alert_rules SET enabled = false",
    "INSERT INTO uplinks (time, dedup_key, dev_eui, lns) VALUES (now(), 1, 'x', 'tts')",
    "UPDATE town.parking_events SET occupied = true",
    "SELECT count(*) FROM public.uplinks",
    "SELECT count(*) FROM public.bin_levels",
    "SELECT count(*) FROM public.parking_events",
    "SELECT count(*) FROM public.passenger_counts",
    "SELECT count(*) FROM public.uplinks_hourly",
    "SELECT count(*) FROM public.parking_lot_hourly",
    "SELECT count(*) FROM public.line_load_hourly",
    "SELECT count(*) FROM tenants",
    "SELECT count(*) FROM api_keys",
    "SELECT count(*) FROM device_state",
    "UPDATE tenants SET db_role = NULL",
    "CREATE TABLE evil (x int)",
    "CREATE VIEW town.evil AS SELECT 1",
]


def test_a_town_reader_is_refused_writes_and_the_unfiltered_tables(towns: Towns) -> None:
    with psycopg.connect(towns.readers["a"], autocommit=True) as conn:
        for statement in REFUSED:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement.encode())


def test_a_leaky_function_sees_no_row_of_the_other_town(towns: Towns) -> None:
    """A cheap function in the reader's WHERE runs only on rows the filter admitted (security barrier)."""
    notices: list[str] = []
    with psycopg.connect(towns.readers["a"]) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute(
            "CREATE FUNCTION pg_temp.peek(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS"
            " $$ BEGIN RAISE NOTICE 'peek %', $1; RETURN true; END $$"
        )
        for relation in ("uplinks", "bin_levels", "parking_events", "uplinks_hourly", "devices", "dead_letters"):
            conn.execute(f"SELECT count(*) FROM {relation} WHERE pg_temp.peek(dev_eui)".encode())
        conn.execute("DROP FUNCTION pg_temp.peek(text)")
    peeked = {m.removeprefix("peek ") for m in notices}
    assert peeked and peeked <= set(towns.devices["a"]), peeked - set(towns.devices["a"])


def test_the_hub_roles_still_see_everything(towns: Towns) -> None:
    with psycopg.connect(towns.owner) as owner:
        totals = {relation: _keys(owner, relation) for relation in ROWS}
    for service in ("grafana", "api"):
        with psycopg.connect(_hub_url(towns.owner, service)) as conn:
            for relation in ROWS:
                privileged = conn.execute("SELECT has_table_privilege(%s, 'SELECT')", (relation,)).fetchone()
                if privileged and privileged[0]:
                    assert _keys(conn, relation) == totals[relation], f"{service}: {relation}"
    with psycopg.connect(_hub_url(towns.owner, "ingest")) as conn:
        assert _keys(conn, "devices") == totals["devices"]
        assert _keys(conn, "dead_letters") == totals["dead_letters"]


def _uplink(dev: str, f_cnt: int) -> tuple[str, bytes]:
    msg = chirpstack_uplink(
        dev_eui=dev,
        application_id=APP,
        time=NOW - timedelta(minutes=30) + timedelta(seconds=f_cnt),
        f_port=1,
        payload=b"\x01",
        f_cnt=f_cnt,
    )
    return chirpstack_topic(APP, dev), orjson.dumps(msg)


def test_the_ingest_writes_as_its_role_and_each_town_sees_its_new_rows(towns: Towns) -> None:
    """The writer's COPY, inserts, dead-letter upsert and gap deletes pass the policies; what it stored shows in
    the town of the device, an unknown device's dead letter in no town."""
    a_space, b_space = towns.devices["a"][1], towns.devices["b"][1]
    url = _hub_url(towns.owner, "ingest")
    with psycopg.connect(url) as conn:
        pipeline = Pipeline(load_registry(conn))
    messages = [_uplink(a_space, 100), _uplink(a_space, 104), _uplink(b_space, 100), _uplink("ffffffffffffff02", 1)]
    writer = Writer(url)
    try:
        prepared = pipeline.prepare([t for t, _ in messages], [p for _, p in messages], time.time())
        result = writer.write(prepared.batch)
        writer.write(prepared.batch)  # redelivered: the dead letter's repeats go up (an update under the policy)
    finally:
        writer.close()
    assert (result.stored, result.domain, result.gaps) == (4, {"parking_events": 3}, 1)
    with psycopg.connect(towns.owner) as owner:
        assert owner.execute("SELECT repeats FROM dead_letters WHERE dev_eui = 'ffffffffffffff02'").fetchone() == (2,)
    with psycopg.connect(towns.readers["a"]) as conn:
        assert conn.execute(
            "SELECT count(*) FROM parking_events WHERE time > %s", (NOW - timedelta(hours=1),)
        ).fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM fcnt_gaps WHERE f_cnt_from = 101").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM dead_letters WHERE dev_eui LIKE 'ffff%'").fetchone() == (0,)
    with psycopg.connect(towns.readers["b"]) as conn:
        assert conn.execute(
            "SELECT count(*) FROM parking_events WHERE time > %s", (NOW - timedelta(hours=1),)
        ).fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM fcnt_gaps WHERE f_cnt_from = 101").fetchone() == (0,)


def _panel_queries() -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """(dashboard, panel, SQL) of every SQL target of the committed dashboards."""
    out = []
    for path in sorted((PROVISIONING / DASHBOARD_DIR).glob("*.json")):
        dash = json.loads(path.read_text())
        out += [(dash, p, t["rawSql"]) for p in dash["panels"] for t in p["targets"] if "rawSql" in t]
    return out


def _as_grafana_runs(conn: psycopg.Connection, dash: dict[str, Any], panel: dict[str, Any], query: str) -> list[Any]:
    """The panel's SQL expanded as Grafana expands it over the last day, variables on "All"."""
    start, end = NOW - timedelta(days=1), datetime.now(UTC) + timedelta(minutes=1)  # dead letters: now()
    values: dict[str, Any] = {}
    for var in dash["templating"]["list"]:
        if var["type"] == "constant":
            values[var["name"]] = var["query"]
        else:
            found = [str(r[-1]) for r in conn.execute(expand(var["query"], QueryContext(start, end)).encode())]
            assert found, f"${var['name']} of {dash['uid']} has no values for the town"
            values[var["name"]] = found
    ctx = QueryContext(start, end, auto_interval(start, end, min_interval=panel.get("interval")), values)
    return conn.execute(expand(query, ctx).encode()).fetchall()


def test_every_dashboard_panel_runs_as_a_town_reader_on_its_towns_rows(towns: Towns) -> None:
    """What the town's Grafana runs: every SQL panel works under the town role (grants, views, search path),
    and the counts are the town's."""
    queries = _panel_queries()
    assert len(queries) > 30
    for key, url in towns.readers.items():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '20s'")
            for dash, panel, query in queries:
                try:
                    rows = _as_grafana_runs(conn, dash, panel, query)
                except psycopg.Error as e:
                    pytest.fail(f"{key}: {dash['uid']} / {panel['title']}: {e}")
                if (dash["uid"], panel["title"]) == ("stadtpuls-fleet", "Devices"):
                    assert rows == [(len(towns.devices[key]),)]
                if (dash["uid"], panel["title"]) == ("stadtpuls-fleet", "Uplinks"):
                    assert rows == [(18,)]  # 6 hours x 3 devices of the town, none of the other's
                if (dash["uid"], panel["title"]) == ("stadtpuls-fleet", "Dead letters"):
                    assert rows == [(1,)]  # its device's; the other town's and the unknown device's are not


@pytest.mark.timescaledb
def test_timescaledb_town_reads_compressed_chunks_and_aggregates_only_through_its_views(
    timescaledb: str, towns: Towns
) -> None:
    """Compressed chunks and continuous aggregates are read through the town views; the chunks and the
    materialisation, which carry the hypertables' grants but not row security, stay closed to a town."""
    with psycopg.connect(towns.owner, autocommit=True) as conn:
        conn.execute("CALL refresh_continuous_aggregate('uplinks_hourly', NULL, NULL)")
        chunks = [str(r[0]) for r in conn.execute("SELECT show_chunks('uplinks')")]
        conn.execute("SELECT compress_chunk(c, true) FROM show_chunks('uplinks') c")
        materialised = conn.execute(
            "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)"
            " FROM timescaledb_information.continuous_aggregates WHERE view_name = 'uplinks_hourly'"
        ).fetchone()
    assert chunks and materialised
    with psycopg.connect(towns.owner) as owner, psycopg.connect(towns.readers["a"]) as conn:
        for relation in ("uplinks", "uplinks_hourly", "bin_levels", "parking_lot_hourly"):
            cond = ROWS[relation][1]
            assert _keys(conn, relation) == _keys(owner, relation, cond, t=towns.slugs["a"]), relation
    for relation in [*chunks, str(materialised[0])]:
        with psycopg.connect(towns.readers["a"]) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(f"SELECT count(*) FROM {relation}".encode())
