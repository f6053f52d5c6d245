"""The batch writer on the real database: notifications, gap bookkeeping with late frames, bus stops, dedup."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import psycopg

from stadtpuls.ingest.codecs import get
from stadtpuls.ingest.envelopes.keys import stored_key
from stadtpuls.ingest.pipeline import Pipeline
from stadtpuls.ingest.registry import load_registry
from stadtpuls.ingest.stops import load_recent_stops
from stadtpuls.ingest.writer import Writer, WriteResult
from stadtpuls.simulators.messages import chirpstack_join, chirpstack_topic, chirpstack_uplink, tts_topic, tts_uplink

from .conftest import register

APP = "00000000-0000-0000-0000-00000000000a"
T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
FLEET = """
sites:
  - {site_id: lot-1, kind: lot, capacity: 5}
  - {site_id: space-1, kind: space, parent_id: lot-1}
  - {site_id: line-5, kind: line}
  - {site_id: bus-51, kind: vehicle, parent_id: line-5, capacity: 80}
  - {site_id: stop-markt, kind: stop, parent_id: line-5, lat: 51.3400, lon: 12.3700, seq: 1}
  - {site_id: stop-bahnhof, kind: stop, parent_id: line-5, lat: 51.3450, lon: 12.3800, seq: 2}
devices:
  - {dev_eui: "1000000000000001", codec: nwave/nps405, site_id: space-1}
  - {dev_eui: "2000000000000001", codec: opensource/esp32-paxcounter, site_id: bus-51}
  - {dev_eui: "2000000000000002", codec: milesight-iot/vs133, site_id: bus-51}
"""
SPACE, PAX, DOOR = "1000000000000001", "2000000000000001", "2000000000000002"


def _up(
    dev: str, f_cnt: int, seconds: float, payload: bytes, f_port: int = 1, base: datetime = T0
) -> tuple[str, bytes]:
    msg = chirpstack_uplink(
        dev_eui=dev,
        application_id=APP,
        time=base + timedelta(seconds=seconds),
        f_port=f_port,
        payload=payload,
        f_cnt=f_cnt,
    )
    return chirpstack_topic(APP, dev), orjson.dumps(msg)


def _write(url: str, pipeline: Pipeline, writer: Writer, messages: list[tuple[str, bytes]]) -> WriteResult:
    prepared = pipeline.prepare([t for t, _ in messages], [p for _, p in messages], time.time())
    return writer.write(prepared.batch)


def _setup(url: str) -> tuple[Pipeline, Writer]:
    register(url, FLEET)
    with psycopg.connect(url) as conn:
        registry = load_registry(conn)
    return Pipeline(registry), Writer(url)


def test_committed_domain_rows_are_announced_with_pg_notify(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    with psycopg.connect(clean_db, autocommit=True) as listener:
        listener.execute("LISTEN stadtpuls")
        _write(clean_db, pipeline, writer, [_up(SPACE, 1, 0, b"\x01"), _up(SPACE, 2, 60, b"\x00")])
        note = next(listener.notifies(timeout=5, stop_after=1))
    writer.close()
    assert orjson.loads(note.payload) == {"parking": 2, "bins": 0, "passengers": 0, "environment": 0}


def test_gaps_are_recorded_and_filled_by_late_frames(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    _write(clean_db, pipeline, writer, [_up(SPACE, f, f * 60, b"\x01") for f in (1, 2, 7, 8)])
    gaps = "SELECT f_cnt_from, f_cnt_to, missing FROM fcnt_gaps ORDER BY f_cnt_from"
    with psycopg.connect(clean_db) as conn:
        assert conn.execute(gaps).fetchall() == [(3, 6, 4)]
        _write(clean_db, pipeline, writer, [_up(SPACE, 4, 4 * 60, b"\x01")])  # late: splits the gap
        assert conn.execute(gaps).fetchall() == [(3, 3, 1), (5, 6, 2)]
        _write(
            clean_db,
            pipeline,
            writer,
            [_up(SPACE, 3, 180, b"\x01"), _up(SPACE, 5, 300, b"\x00"), _up(SPACE, 6, 360, b"\x00")],
        )
        assert conn.execute(gaps).fetchall() == []
        state = conn.execute("SELECT last_f_cnt FROM device_state WHERE dev_eui = %s", (SPACE,)).fetchone()
        assert state == (8,)
        # every filled counter is noted as closed, once
        closed = conn.execute("SELECT f_cnt FROM fcnt_gaps_closed WHERE dev_eui = %s ORDER BY f_cnt", (SPACE,))
        assert closed.fetchall() == [(3,), (4,), (5,), (6,)]
    writer.close()


def test_a_join_restarts_the_count_without_a_gap(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    join = chirpstack_join(dev_eui=SPACE, application_id=APP, time=T0 + timedelta(seconds=130), dev_addr="01020304")
    _write(
        clean_db,
        pipeline,
        writer,
        [
            _up(SPACE, 40, 60, b"\x01"),
            _up(SPACE, 41, 120, b"\x01"),
            (chirpstack_topic(APP, SPACE, "join"), orjson.dumps(join)),
            _up(SPACE, 0, 140, b"\x00"),
            _up(SPACE, 1, 200, b"\x01"),
        ],
    )
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM fcnt_gaps").fetchone() == (0,)
        assert conn.execute("SELECT last_f_cnt, last_join IS NOT NULL FROM device_state").fetchone() == (1, True)
    writer.close()


def test_a_counter_value_of_a_later_session_does_not_fill_an_old_sessions_gap(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    gaps = "SELECT f_cnt_from, f_cnt_to FROM fcnt_gaps ORDER BY time"
    _write(clean_db, pipeline, writer, [_up(SPACE, f, f * 60, b"\x01") for f in (1, 2, 4, 5)])  # 3 lost
    join = chirpstack_join(dev_eui=SPACE, application_id=APP, time=T0 + timedelta(hours=2), dev_addr="01020305")
    new_session = [_up(SPACE, f, 7200 + f * 60, b"\x00") for f in (1, 2, 3, 4)]
    _write(clean_db, pipeline, writer, [(chirpstack_topic(APP, SPACE, "join"), orjson.dumps(join)), *new_session])
    _write(clean_db, pipeline, writer, [new_session[2]])  # redelivered: late, counter 3 of the new session
    with psycopg.connect(clean_db) as conn:
        assert conn.execute(gaps).fetchall() == [(3, 3)]
        # a late uplink of the old session (counter 3, reading time before the gap) still fills it
        _write(clean_db, pipeline, writer, [_up(SPACE, 3, 180, b"\x01")])
        assert conn.execute(gaps).fetchall() == []
    writer.close()


def test_a_hole_is_recorded_when_the_batch_before_it_commits_after_the_batch_behind_it(clean_db: str) -> None:
    """Two writers may commit an earlier batch after a later one: the later batch's uplinks then follow an old
    session's counter (no gap visible), the earlier batch's are late; the hole between them is found among the
    stored uplinks once both are in."""
    pipeline, writer = _setup(clean_db)
    gaps = "SELECT f_cnt_from, f_cnt_to FROM fcnt_gaps ORDER BY f_cnt_from"
    _write(clean_db, pipeline, writer, [_up(SPACE, f, (f - 69) * 60, b"\x01") for f in (70, 71, 72)])  # old session
    join = chirpstack_join(dev_eui=SPACE, application_id=APP, time=T0 + timedelta(hours=1), dev_addr="01020306")
    earlier = [(chirpstack_topic(APP, SPACE, "join"), orjson.dumps(join))]
    earlier += [_up(SPACE, f, 3600 + 60 + f * 60, b"\x00") for f in (0, 1, 2, 3)]
    later = [_up(SPACE, f, 3600 + 60 + f * 60, b"\x01") for f in (5, 6, 9)]  # 4, 7 and 8 lost
    _write(clean_db, pipeline, writer, later)
    with psycopg.connect(clean_db) as conn:
        assert conn.execute(gaps).fetchall() == [(7, 8)]  # 5 after 72: a reset, nothing to see yet
        _write(clean_db, pipeline, writer, earlier)
        assert conn.execute(gaps).fetchall() == [(4, 4), (7, 8)]
        _write(clean_db, pipeline, writer, earlier[1:])  # redelivered: nothing new
        assert conn.execute(gaps).fetchall() == [(4, 4), (7, 8)]
    writer.close()


def test_a_join_delivered_again_later_hides_no_gap(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    join = chirpstack_join(dev_eui=SPACE, application_id=APP, time=T0 + timedelta(seconds=30), dev_addr="01020307")
    message = (chirpstack_topic(APP, SPACE, "join"), orjson.dumps(join))
    _write(clean_db, pipeline, writer, [message, *[_up(SPACE, f, 60 + f * 60, b"\x01") for f in (0, 1, 2)]])
    _write(clean_db, pipeline, writer, [message, _up(SPACE, 4, 300, b"\x00")])  # the join again; 3 lost
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT f_cnt_from, f_cnt_to FROM fcnt_gaps").fetchall() == [(3, 3)]
        assert conn.execute("SELECT last_join FROM device_state").fetchone() == (T0 + timedelta(seconds=30),)
    writer.close()


def _pax(wifi: int, lat: float, lon: float) -> bytes:
    cols = {
        "wifi": np.array([wifi]),
        "ble": np.array([0]),
        "latitude": np.array([lat]),
        "longitude": np.array([lon]),
        "sats": np.array([6]),
        "hdop": np.array([1.2]),
        "altitude": np.array([110]),
    }
    buf, _ = get("opensource/esp32-paxcounter").encode(1, cols)
    return buf.tobytes()


def _door(pax_in: int, pax_out: int) -> bytes:
    buf, _ = get("milesight-iot/vs133").encode(
        85, {"line_1.period_in": np.array([pax_in]), "line_1.period_out": np.array([pax_out])}
    )
    return buf.tobytes()


def test_passenger_rows_get_the_stop_of_the_position_or_the_last_resolved_stop(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    _write(
        clean_db,
        pipeline,
        writer,
        [
            _up(PAX, 1, 0, _pax(12, 51.3401, 12.3702)),  # 20 m from Markt
            _up(DOOR, 1, 5, _door(3, 1), f_port=85),
        ],
    )
    _write(
        clean_db,
        pipeline,
        writer,
        [
            _up(PAX, 2, 300, _pax(14, 51.3449, 12.3799)),  # at Bahnhof
            _up(DOOR, 2, 306, _door(0, 4), f_port=85),
            _up(PAX, 3, 420, _pax(11, 51.3600, 12.4000)),  # between stops: no stop
            _up(DOOR, 3, 425, _door(1, 0), f_port=85),
        ],
    )
    with psycopg.connect(clean_db) as conn:
        rows = conn.execute(
            "SELECT dev_eui, stop_id, line_id, pax_in, pax_out, pax_count FROM passenger_counts ORDER BY time"
        ).fetchall()
    writer.close()
    assert rows == [
        (PAX, "stop-markt", "line-5", None, None, 12),
        (DOOR, "stop-markt", "line-5", 3, 1, None),
        (PAX, "stop-bahnhof", "line-5", None, None, 14),
        (DOOR, "stop-bahnhof", "line-5", 0, 4, None),
        (PAX, None, "line-5", None, None, 11),
        (DOOR, None, "line-5", 1, 0, None),
    ]


def test_a_door_counter_after_a_restart_finds_the_stop_in_the_database(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    now = datetime.now(UTC).replace(microsecond=0)
    _write(clean_db, pipeline, writer, [_up(PAX, 1, -30, _pax(12, 51.3401, 12.3702), base=now)])
    door = _up(DOOR, 1, -20, _door(2, 2), f_port=85, base=now)
    with psycopg.connect(clean_db, autocommit=True) as side:

        def recent(vehicles: list[str]) -> dict[str, tuple[str, np.datetime64]]:
            return load_recent_stops(side, vehicles)

        restarted = Pipeline(load_registry(side), recent_stops=recent)  # nothing in memory
        _write(clean_db, restarted, writer, [door])
        stop = side.execute("SELECT stop_id FROM passenger_counts WHERE dev_eui = %s", (DOOR,)).fetchone()
    writer.close()
    assert stop == ("stop-markt",)


def _v3_without_time(dev: str, f_cnt: int, payload: bytes) -> tuple[str, bytes]:
    """An early ChirpStack v3 uplink: no ``publishedAt``, a gateway without a clock; the hub's time is all there is."""
    msg = {
        "applicationID": "7",
        "devEUI": dev,
        "fCnt": f_cnt,
        "fPort": 1,
        "data": base64.b64encode(payload).decode(),
        "rxInfo": [
            {
                "gatewayID": "0303030303030303",
                "uplinkID": f"00000000-0000-0000-0000-{f_cnt:012d}",
                "rssi": -80,
                "loRaSNR": 7.5,
            }
        ],
        "txInfo": {"frequency": 868100000, "dr": 5},
    }
    return f"application/7/device/{dev}/rx", orjson.dumps(msg)


def test_a_redelivered_uplink_timed_by_the_hub_clock_is_stored_once(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    first = [_v3_without_time(SPACE, 41, b"\x01")]
    hub = time.time()
    results = []
    for delay, messages in ((0, first), (90, first), (95, [_v3_without_time(SPACE, 42, b"\x00")]), (300, first)):
        prepared = pipeline.prepare([t for t, _ in messages], [p for _, p in messages], hub + delay)
        assert prepared.batch.hub_clock == 1
        results.append(writer.write(prepared.batch))
    writer.close()
    assert [(r.stored, r.duplicates) for r in results] == [(1, 0), (0, 1), (1, 0), (0, 1)]
    with psycopg.connect(clean_db) as conn:
        rows = conn.execute("SELECT f_cnt, time FROM uplinks ORDER BY f_cnt").fetchall()
        assert [r[0] for r in rows] == [41, 42]
        assert abs(rows[0][1].timestamp() - hub) < 1e-3  # the first delivery's time is kept
        states = conn.execute("SELECT occupied FROM parking_events WHERE dev_eui = %s ORDER BY time", (SPACE,))
        assert [r[0] for r in states.fetchall()] == [True, False]


def _tts_without_times(f_cnt: int, payload: bytes, simulated: bool = False) -> tuple[str, bytes]:
    msg = tts_uplink(
        device_id="space-1",
        app_id="city",
        dev_eui=SPACE,
        received_at=T0,
        f_port=1,
        payload=payload,
        f_cnt=f_cnt,
        simulated=simulated,
    )
    msg.pop("received_at")
    msg["uplink_message"].pop("received_at", None)
    return tts_topic("city", "space-1"), orjson.dumps(msg)


def test_tts_uplinks_without_server_times_redelivered_once_simulated_ones_each_kept(clean_db: str) -> None:
    register(clean_db, FLEET)
    with psycopg.connect(clean_db) as conn:
        pipeline, writer = Pipeline(load_registry(conn), store_simulated=True), Writer(clean_db)
    hub = time.time()
    real, sims = _tts_without_times(7, b"\x01"), [_tts_without_times(0, b, simulated=True) for b in (b"\x00", b"\x01")]
    results = []
    for delay, message in ((0, real), (30, real), (40, sims[0]), (50, sims[1])):
        prepared = pipeline.prepare([message[0]], [message[1]], hub + delay)
        assert prepared.batch.hub_clock == 1
        results.append(writer.write(prepared.batch))
    writer.close()
    assert [(r.stored, r.duplicates) for r in results] == [(1, 0), (0, 1), (1, 0), (1, 0)]
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FILTER (WHERE simulated), count(*) FROM uplinks").fetchone() == (2, 3)


def test_uplinks_with_a_network_server_time_are_not_looked_up_again(clean_db: str) -> None:
    pipeline, _ = _setup(clean_db)
    messages = [_up(SPACE, 1, 0, b"\x01")]
    assert pipeline.prepare([t for t, _ in messages], [p for _, p in messages], time.time()).batch.hub_clock == 0


def test_a_message_dead_lettered_again_counts_as_a_repeat_not_a_row(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    topic = chirpstack_topic(APP, SPACE)
    broken, other = (topic, b'{"deduplicationId": '), (topic, b"\xff\xfe not json")
    hub = time.time()
    for delay, messages in ((0, [broken, broken, other]), (60, [broken]), (120, [other])):
        prepared = pipeline.prepare([t for t, _ in messages], [p for _, p in messages], hub + delay)
        assert writer.write(prepared.batch).dead_letters == len(messages)  # every rejection counted
    writer.close()
    with psycopg.connect(clean_db) as conn:
        rows = conn.execute(
            "SELECT payload, stage, repeats, extract(epoch FROM last_received_at - received_at)"
            " FROM dead_letters ORDER BY payload"
        ).fetchall()
    assert [(bytes(p), s, n, round(float(d))) for p, s, n, d in rows] == [
        (b'{"deduplicationId": ', "envelope", 3, 60),
        (b"\xff\xfe not json", "envelope", 2, 120),
    ]


def _stored(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT f_cnt, time, lns FROM uplinks ORDER BY time, lns").fetchall()


def test_a_counter_repeated_after_a_rejoin_is_a_new_uplink_and_its_redelivery_is_not(clean_db: str) -> None:
    pipeline, writer = _setup(clean_db)
    before = _up(SPACE, 3, 60, b"\x01")
    join = chirpstack_join(dev_eui=SPACE, application_id=APP, time=T0 + timedelta(hours=1), dev_addr="01020306")
    after = _up(SPACE, 3, 3700, b"\x00")  # the same counter in the new session
    rejoin = [(chirpstack_topic(APP, SPACE, "join"), orjson.dumps(join)), after]
    results = [_write(clean_db, pipeline, writer, messages) for messages in ([before], rejoin, [before, after])]
    writer.close()
    assert [(r.stored, r.duplicates) for r in results] == [(1, 0), (1, 0), (0, 2)]
    assert [(f, t) for f, t, _ in _stored(clean_db)] == [
        (3, T0 + timedelta(seconds=60)),
        (3, T0 + timedelta(seconds=3700)),
    ]


def test_one_frame_from_two_network_servers_is_kept_from_each(clean_db: str) -> None:
    """The same frame (device, counter, time) as ChirpStack v4 and The Things Stack report it: two network-server
    identities, two raw uplinks (one reading, keyed by device and time); each redelivered copy is refused."""
    pipeline, writer = _setup(clean_db)
    chirpstack = _up(SPACE, 9, 0, b"\x01")
    tts = tts_uplink(
        device_id="space-1", app_id="city", dev_eui=SPACE, received_at=T0, f_port=1, payload=b"\x01", f_cnt=9
    )
    both = [chirpstack, (tts_topic("city", "space-1"), orjson.dumps(tts))]
    results = [_write(clean_db, pipeline, writer, messages) for messages in (both, both)]
    writer.close()
    assert [(r.stored, r.duplicates) for r in results] == [(2, 0), (0, 2)]
    assert _stored(clean_db) == [(9, T0, "chirpstack-v4"), (9, T0, "tts")]
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM parking_events").fetchone() == (1,)


def test_a_network_server_id_seen_again_at_another_time_is_another_uplink(clean_db: str) -> None:
    """As before the 64-bit keys: the key counts together with the reading time, so only a copy with the same
    time is a redelivery (uplinks timed by the hub are looked up by key, see the tests above)."""
    pipeline, writer = _setup(clean_db)
    dedup = "5b1f7d2c-8e4a-4c1b-9f3e-0a1b2c3d4e5f"
    first, later = (
        (
            chirpstack_topic(APP, SPACE),
            orjson.dumps(
                chirpstack_uplink(
                    dev_eui=SPACE,
                    application_id=APP,
                    time=T0 + timedelta(seconds=s),
                    f_port=1,
                    payload=b"\x01",
                    f_cnt=f,
                    deduplication_id=dedup,
                )
            ),
        )
        for f, s in ((1, 0), (2, 600))
    )
    results = [_write(clean_db, pipeline, writer, messages) for messages in ([first], [later], [first, later])]
    writer.close()
    assert [(r.stored, r.duplicates) for r in results] == [(1, 0), (1, 0), (0, 2)]
    with psycopg.connect(clean_db) as conn:
        keys = {k for (k,) in conn.execute("SELECT dedup_key FROM uplinks")}
    assert keys == {stored_key(uuid.UUID(dedup).bytes)}
