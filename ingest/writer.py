"""The batch writer: one transaction per batch, binary COPY into staging tables, then idempotent inserts.

Per connection the writer creates TEMP staging tables (``ON COMMIT DELETE ROWS``) once. A batch is written as

1. binary COPY of the raw uplinks into ``stage_uplinks``, ``INSERT INTO uplinks SELECT ... ON CONFLICT DO
   NOTHING`` (the row count tells stored from redelivered duplicates);
2. the same for every domain table with rows;
3. dead letters by COPY into staging, one row per distinct message (repeats counted);
4. ``pg_notify('stadtpuls', '{"parking": n, ...}')`` when domain rows were stored;
5. frame-counter tracking, last so that the rows it locks stay locked only until the commit: the batch's
   devices' ``device_state`` rows are locked (in DevEUI order, so concurrent writers queue instead of
   deadlocking), gaps found (:mod:`ingest.gaps`) and inserted, late uplinks fill the gaps they fall into, the
   state is updated;

and committed. Any database error rolls the transaction back and propagates as the psycopg exception; the worker
decides (connection lost: spool; bad data: split the batch). A broken connection is dropped and reopened, with its
staging tables, on the next batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import psycopg
from psycopg import sql

from .domain import NOTIFY_NAMES, TableRows
from .gaps import GapResult, PriorState, find_gaps
from .pgcopy import Field, encode, var_from_strings

__all__ = ["UPLINK_COLUMNS", "PreparedBatch", "Tracking", "WriteResult", "Writer"]

UPLINK_COLUMNS = (
    "time",
    "dedup_key",
    "dev_eui",
    "f_cnt",
    "f_port",
    "payload",
    "rssi",
    "snr",
    "dr",
    "sf",
    "frequency",
    "gateways",
    "gateway_id",
    "lns",
    "simulated",
    "received_at",
)
DEAD_LETTER_COLUMNS = ("received_at", "topic", "stage", "reason", "dev_eui", "lns", "payload")
_STAGED = ("uplinks", "bin_levels", "parking_events", "passenger_counts", "environment_readings", "uplink_decoded")
# Each distinct message once (its key from the topic and the raw bytes); copies within the batch and deliveries
# of a message already dead-lettered add to ``repeats``.
_DEAD_LETTERS = """
INSERT INTO dead_letters AS d (received_at, topic, stage, reason, dev_eui, lns, payload, message_key, repeats,
                               last_received_at)
SELECT DISTINCT ON (k) received_at, topic, stage, reason, dev_eui, lns, payload, k, n, CASE WHEN n > 1 THEN last END
FROM (SELECT st.*, k, (count(*) OVER w)::int AS n, max(st.received_at) OVER w AS last
      FROM stage_dead_letters st, dead_letter_key(st.topic, st.payload) AS k
      WINDOW w AS (PARTITION BY k)) s
ORDER BY k, received_at
ON CONFLICT (message_key) DO UPDATE SET repeats = d.repeats + excluded.repeats,
    last_received_at = greatest(d.last_received_at, excluded.last_received_at, excluded.received_at)
"""
_GAP_COLUMNS = ("time", "dev_eui", "f_cnt_from", "f_cnt_to")
_STATE_COLUMNS = ("dev_eui", "last_f_cnt", "last_time", "session", "last_join")

_LOCK_STATE = """
SELECT dev_eui, coalesce(last_f_cnt, -1), (extract(epoch FROM last_time) * 1000000)::bigint, session
FROM device_state WHERE dev_eui = ANY(%s::text[]) ORDER BY dev_eui FOR UPDATE
"""
_NEW_STATE = "INSERT INTO device_state (dev_eui) SELECT unnest(%s::text[]) ORDER BY 1 ON CONFLICT DO NOTHING"
_UPDATE_STATE = """
UPDATE device_state d SET last_f_cnt = s.last_f_cnt, last_time = s.last_time, session = s.session,
    last_join = coalesce(s.last_join, d.last_join), updated_at = now()
FROM stage_state s WHERE d.dev_eui = s.dev_eui
"""
# An uplink without a time of its own gets the hub's receive time (also its received_at), so a redelivery of it
# has another time and would pass the (dedup_key, time) key: such staged rows whose key was stored in the last
# week are dropped here, with their readings, before the inserts.
_DROP_REDELIVERED = """
DELETE FROM stage_uplinks s USING uplinks u
WHERE s.time = s.received_at AND u.dedup_key = s.dedup_key
  AND u.time >= s.time - interval '7 days' AND u.time < s.time
RETURNING s.dev_eui, s.time
"""
# A late uplink fills a recorded gap of its device that holds its counter and was recorded at an uplink after it
# (the gap's time, with a margin for network-server clock skew): a counter value that comes again in a later
# session (after a join or a reset) must not fill an old session's gap.
_GAPS_HIT = """
SELECT g.time, g.dev_eui, g.f_cnt_from, g.f_cnt_to, array_agg(DISTINCT l.f_cnt)
FROM fcnt_gaps g JOIN unnest(%s::text[], %s::bigint[], %s::bigint[]) AS l(dev_eui, f_cnt, time_us)
  ON g.dev_eui = l.dev_eui AND l.f_cnt BETWEEN g.f_cnt_from AND g.f_cnt_to
  AND to_timestamp(l.time_us / 1e6) <= g.time + interval '5 minutes'
GROUP BY 1, 2, 3, 4
"""


@dataclass
class Tracking:
    """Frame-counter inputs: stored uplinks of registered devices, and joins/resets ``(dev_eui, time)``."""

    dev_eui: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="S16"))
    f_cnt: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    time: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="datetime64[us]"))
    session: list[str | None] = field(default_factory=list)
    resets: list[tuple[bytes, np.datetime64]] = field(default_factory=list)


@dataclass
class PreparedBatch:
    """Everything one transaction writes, as COPY fields."""

    uplinks: list[Field]
    n_uplinks: int
    #: uplinks whose message had no usable time, so their reading time is the hub's receive time
    hub_clock: int = 0
    tables: list[TableRows] = field(default_factory=list)
    dead_letters: list[Field] = field(default_factory=list)
    n_dead: int = 0
    tracking: Tracking = field(default_factory=Tracking)


@dataclass
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    domain: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    missing: int = 0
    dead_letters: int = 0


def _staging_ddl(table: str) -> sql.Composed:
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
        sql.Identifier("stage_" + table), sql.Identifier(table)
    )


def _copy_stmt(table: str, columns: tuple[str, ...] | list[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _insert_stmt(table: str, columns: tuple[str, ...] | list[str], staging: str = "") -> sql.Composed:
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
        sql.Identifier(table), cols, cols, sql.Identifier(staging or "stage_" + table)
    )


class Writer:
    """Writes prepared batches to the database at ``url`` (see the module docstring)."""

    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.conn: psycopg.Connection[Any] | None = None

    def connect(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.close()
            conn = psycopg.connect(self.url, connect_timeout=max(1, int(self.connect_timeout)))
            with conn.transaction():
                for table in _STAGED:
                    conn.execute(_staging_ddl(table))
                conn.execute(
                    sql.SQL(
                        "CREATE TEMP TABLE IF NOT EXISTS stage_dead_letters ON COMMIT DELETE ROWS"
                        " AS SELECT {} FROM dead_letters WITH NO DATA"
                    ).format(sql.SQL(", ").join(map(sql.Identifier, DEAD_LETTER_COLUMNS)))
                )
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS stage_gaps (time timestamptz, dev_eui text, f_cnt_from bigint,"
                    " f_cnt_to bigint) ON COMMIT DELETE ROWS"
                )
                conn.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS stage_state (dev_eui text, last_f_cnt bigint,"
                    " last_time timestamptz, session text, last_join timestamptz) ON COMMIT DELETE ROWS"
                )
            self.conn = conn
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def write(self, batch: PreparedBatch) -> WriteResult:
        """Write one batch in one transaction; raises the psycopg error after a rollback."""
        conn = self.connect()
        try:
            with conn.transaction():
                return self._write(conn, batch)
        except psycopg.Error:
            if conn.broken or conn.closed:
                self.close()
            raise

    def _copy(self, cur: psycopg.Cursor[Any], table: str, columns: Any, fields: list[Field], n: int) -> None:
        with cur.copy(_copy_stmt(table, columns)) as copy:
            copy.write(encode(fields, n))

    def _write(self, conn: psycopg.Connection[Any], batch: PreparedBatch) -> WriteResult:
        result = WriteResult()
        cur = conn.cursor()
        if batch.n_uplinks:
            self._copy(cur, "stage_uplinks", UPLINK_COLUMNS, batch.uplinks, batch.n_uplinks)
        for t in batch.tables:
            self._copy(cur, "stage_" + t.table, t.columns, t.fields, len(t.rows))
        if batch.hub_clock:
            self._drop_redelivered(cur, [t.table for t in batch.tables])
        if batch.n_uplinks:
            cur.execute(_insert_stmt("uplinks", UPLINK_COLUMNS))
            result.stored = max(cur.rowcount, 0)
            result.duplicates = batch.n_uplinks - result.stored
        for t in batch.tables:
            cur.execute(_insert_stmt(t.table, t.columns))
            result.domain[t.table] = result.domain.get(t.table, 0) + max(cur.rowcount, 0)
        if batch.n_dead:
            self._copy(cur, "stage_dead_letters", DEAD_LETTER_COLUMNS, batch.dead_letters, batch.n_dead)
            cur.execute(_DEAD_LETTERS)
            result.dead_letters = batch.n_dead
        if any(result.domain.values()):
            counts = {short: result.domain.get(table, 0) for table, short in NOTIFY_NAMES.items()}
            cur.execute("SELECT pg_notify('stadtpuls', %s)", (orjson.dumps(counts).decode(),))
        if len(batch.tracking.dev_eui) or batch.tracking.resets:
            # last: the device state rows stay locked only from here to the commit
            self._track(cur, batch.tracking, result)
        return result

    @staticmethod
    def _drop_redelivered(cur: psycopg.Cursor[Any], tables: list[str]) -> None:
        gone = cur.execute(_DROP_REDELIVERED).fetchall()
        if not gone:
            return
        euis, times = [g[0] for g in gone], [g[1] for g in gone]
        for table in dict.fromkeys(tables):
            cur.execute(
                sql.SQL(
                    "DELETE FROM {} d USING unnest(%s::text[], %s::timestamptz[]) AS g(dev_eui, time)"
                    " WHERE d.dev_eui = g.dev_eui AND d.time = g.time"
                ).format(sql.Identifier("stage_" + table)),
                (euis, times),
            )

    def _track(self, cur: psycopg.Cursor[Any], tr: Tracking, result: WriteResult) -> None:
        euis = np.unique(np.concatenate([tr.dev_eui.astype("S16"), np.array([d for d, _ in tr.resets], dtype="S16")]))
        devs = [d.decode() for d in euis.tolist()]
        # lock the devices' state rows in DevEUI order (concurrent workers then queue instead of deadlocking);
        # devices seen for the first time get a row first
        rows = cur.execute(_LOCK_STATE, (devs,)).fetchall()
        if len(rows) < len(devs):
            known = {r[0] for r in rows}
            new = [d for d in devs if d not in known]
            cur.execute(_NEW_STATE, (new,))
            rows += cur.execute(_LOCK_STATE, (new,)).fetchall()
        prior = PriorState(
            dev_eui=np.array([r[0].encode() for r in rows], dtype="S16"),
            last_f_cnt=np.array([r[1] for r in rows], dtype=np.int64),
            last_time=np.array(
                [np.datetime64(r[2], "us") if r[2] is not None else np.datetime64("NaT", "us") for r in rows],
                dtype="datetime64[us]",
            ),
            session=[r[3] for r in rows],
        )
        g = find_gaps(tr.dev_eui, tr.f_cnt, tr.time, tr.session, prior, tr.resets)
        if len(g.gap_dev):
            fields = [
                Field("timestamptz", g.gap_time),
                Field("text", g.gap_dev),
                Field("int8", g.gap_from),
                Field("int8", g.gap_to),
            ]
            self._copy(cur, "stage_gaps", _GAP_COLUMNS, fields, len(g.gap_dev))
            cur.execute(_insert_stmt("fcnt_gaps", _GAP_COLUMNS, "stage_gaps"))
            result.gaps = max(cur.rowcount, 0)
            result.missing = int((g.gap_to - g.gap_from + 1).sum())
        if len(g.late):
            self._fill_gaps(cur, tr.dev_eui[g.late], tr.f_cnt[g.late], tr.time[g.late])
        self._update_state(cur, g)

    def _update_state(self, cur: psycopg.Cursor[Any], g: GapResult) -> None:
        sessions, no_session = var_from_strings(g.state_session)
        fields = [
            Field("text", g.state_dev),
            Field("int8", g.state_f_cnt, g.state_f_cnt < 0),
            Field("timestamptz", g.state_time, np.isnat(g.state_time)),
            Field("text", sessions, no_session),
            Field("timestamptz", g.state_join, np.isnat(g.state_join)),
        ]
        self._copy(cur, "stage_state", _STATE_COLUMNS, fields, len(g.state_dev))
        cur.execute(_UPDATE_STATE)

    def _fill_gaps(self, cur: psycopg.Cursor[Any], dev: np.ndarray, f_cnt: np.ndarray, time: np.ndarray) -> None:
        """Late uplinks fill the recorded gaps they fall into: split or remove those gaps."""
        devs = [bytes(d).decode() for d in dev.tolist()]
        time_us = time.astype("datetime64[us]").astype(np.int64).tolist()
        hits = cur.execute(_GAPS_HIT, (devs, f_cnt.tolist(), time_us)).fetchall()
        if not hits:
            return
        keep: list[tuple[object, str, int, int]] = []
        for gap_time, d, lo, hi, filled in hits:
            start = lo
            for f in sorted(filled) + [hi + 1]:
                if f > start:
                    keep.append((gap_time, d, start, f - 1))
                start = f + 1
        cur.execute(
            "DELETE FROM fcnt_gaps g USING unnest(%s::timestamptz[], %s::text[], %s::bigint[]) AS h(time, dev_eui, lo)"
            " WHERE g.dev_eui = h.dev_eui AND g.f_cnt_from = h.lo AND g.time = h.time",
            ([h[0] for h in hits], [h[1] for h in hits], [h[2] for h in hits]),
        )
        if keep:
            cur.execute(
                "INSERT INTO fcnt_gaps (time, dev_eui, f_cnt_from, f_cnt_to)"
                " SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::bigint[], %s::bigint[])"
                " ON CONFLICT DO NOTHING",
                tuple(list(col) for col in zip(*keep, strict=True)),
            )
