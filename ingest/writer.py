"""The batch writer: one transaction per batch, binary COPY into staging tables, then idempotent inserts.

Per connection the writer creates TEMP staging tables (``ON COMMIT DELETE ROWS``) once, one per table it writes,
named and shaped after the tables described in :mod:`stadtpuls.schema`. A batch is written as

1. binary COPY of the raw uplinks into ``stage_uplinks``, ``INSERT INTO uplinks SELECT ... ON CONFLICT DO
   NOTHING`` (the row count tells stored from redelivered duplicates);
2. the same for every domain table with rows; a table with rollups (parking, passengers, bins) then queues the
   span of its staged rows per lot, line or bin in ``rollup_dirty``, for the rollup job (:mod:`ingest.rollups`; late and
   backfilled readings queue their span like any other);
3. dead letters by COPY into staging, one row per distinct message (repeats counted);
4. ``NOTIFY stadtpuls, '{"parking": n, ...}'`` when domain rows were stored (channel and payload:
   :mod:`stadtpuls.schema`);
5. frame-counter tracking, last so that the rows it locks stay locked only until the commit: the batch's
   devices' ``device_state`` rows are locked (in DevEUI order, so concurrent writers queue instead of
   deadlocking), gaps found (:mod:`ingest.gaps`) and inserted, late uplinks fill the gaps they fall into, the
   state is updated;

and committed. Any database error rolls the transaction back and propagates as the psycopg exception; the worker
decides (connection lost: spool; bad data: split the batch). A broken connection is dropped and reopened, with its
staging tables, on the next batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from stadtpuls.schema import (
    DEAD_LETTERS,
    DEVICE_STATE,
    FCNT_GAPS,
    NOTIFY_CHANNEL,
    READING_TABLES,
    UPLINK_DECODED,
    UPLINKS,
    ReadingTable,
    Table,
    notify_payload,
)

from .domain import TableRows
from .gaps import GapResult, PriorState, find_gaps, late_holes
from .pgcopy import Field, copy_fields, encode, var_from_strings

__all__ = ["PreparedBatch", "Tracking", "WriteResult", "Writer"]

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

_LOCK_STATE = """
SELECT dev_eui, coalesce(last_f_cnt, -1), (extract(epoch FROM last_time) * 1000000)::bigint, session
FROM device_state WHERE dev_eui = ANY(%s::text[]) ORDER BY dev_eui FOR UPDATE
"""
_NEW_STATE = "INSERT INTO device_state (dev_eui) SELECT unnest(%s::text[]) ORDER BY 1 ON CONFLICT DO NOTHING"
_UPDATE_STATE = """
UPDATE device_state d SET last_f_cnt = s.last_f_cnt, last_time = s.last_time, session = s.session,
    last_join = greatest(s.last_join, d.last_join), updated_at = now()
FROM stage_device_state s WHERE d.dev_eui = s.dev_eui
"""
# An uplink without a time of its own gets the hub's receive time (also its received_at), so a redelivery of it
# has another time and would pass the (dev_eui, time, dedup_key) key: such staged rows whose key was stored for
# their device in the last week are dropped here, with their readings, before the inserts.
_DROP_REDELIVERED = """
DELETE FROM stage_uplinks s USING uplinks u
WHERE s.time = s.received_at AND u.dev_eui = s.dev_eui AND u.dedup_key = s.dedup_key
  AND u.time >= s.time - interval '7 days' AND u.time < s.time
RETURNING s.dev_eui, s.time
"""
# A late uplink fills a recorded gap of its device that holds its counter and was recorded at an uplink after it
# (the gap's time, with a margin for network-server clock skew): a counter value that comes again in a later
# session (after a join or a reset) must not fill an old session's gap.
# The stored uplinks of each device from the last one before its earliest late uplink (lo) to the first one after
# its latest (hi), in time order, with their times in microseconds.
_LATE_NEIGHBOURS = """
SELECT w.dev, n.f_cnt, (extract(epoch FROM n.time) * 1000000)::bigint
FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS w(dev, lo, hi)
CROSS JOIN LATERAL (
    (SELECT f_cnt, time FROM uplinks WHERE dev_eui = w.dev AND f_cnt IS NOT NULL
       AND time < (timestamptz 'epoch' + w.lo * interval '1 microsecond') ORDER BY time DESC LIMIT 1)
    UNION ALL
    (SELECT f_cnt, time FROM uplinks WHERE dev_eui = w.dev AND f_cnt IS NOT NULL
       AND time BETWEEN timestamptz 'epoch' + w.lo * interval '1 microsecond'
                    AND timestamptz 'epoch' + w.hi * interval '1 microsecond')
    UNION ALL
    (SELECT f_cnt, time FROM uplinks WHERE dev_eui = w.dev AND f_cnt IS NOT NULL
       AND time > (timestamptz 'epoch' + w.hi * interval '1 microsecond') ORDER BY time LIMIT 1)
) n
ORDER BY w.dev, n.time, n.f_cnt
"""
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


def _staging_ddl(table: Table) -> sql.Composed:
    """The staging table of ``table``: all its columns with their defaults and NOT NULL constraints."""
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
        sql.Identifier(table.staging), sql.Identifier(table.name)
    )


def _staging_columns_ddl(table: Table) -> sql.Composed:
    """The staging table of ``table``: only the described columns, without constraints."""
    ddl = "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
    columns = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
    return sql.SQL(ddl).format(sql.Identifier(table.staging), columns, sql.Identifier(table.name))


def _copy_stmt(table: Table) -> sql.Composed:
    """COPY into the staging table of ``table``."""
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.staging), sql.SQL(", ").join(map(sql.Identifier, table.column_names))
    )


def _insert_stmt(table: Table) -> sql.Composed:
    """Move the described columns from the staging table into ``table``; rows already stored are skipped."""
    cols = sql.SQL(", ").join(map(sql.Identifier, table.column_names))
    return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
        sql.Identifier(table.name), cols, cols, sql.Identifier(table.staging)
    )


def _queue_rollups_stmt(tables: Sequence[ReadingTable]) -> sql.Composed:
    """Queue the span of the staged rows of each of ``tables`` per rollup key (lot, line, bin) for the rollup job,
    in one statement (parameters: the tables' rollup kinds)."""
    parts = []
    for table in tables:
        key = sql.Identifier(table.rollup_key)
        parts.append(
            sql.SQL("SELECT %s::text, {}, min(time), max(time) FROM {} WHERE {} IS NOT NULL GROUP BY 2").format(
                key, sql.Identifier(table.staging), key
            )
        )
    return sql.SQL("INSERT INTO rollup_dirty (kind, key, first, last) ") + sql.SQL(" UNION ALL ").join(parts)


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
                for table in (UPLINKS, *READING_TABLES, UPLINK_DECODED):
                    conn.execute(_staging_ddl(table))
                for table in (DEAD_LETTERS, FCNT_GAPS, DEVICE_STATE):
                    conn.execute(_staging_columns_ddl(table))
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

    def _copy(self, cur: psycopg.Cursor[Any], table: Table, fields: list[Field], n: int) -> None:
        with cur.copy(_copy_stmt(table)) as copy:
            copy.write(encode(fields, n))

    def _write(self, conn: psycopg.Connection[Any], batch: PreparedBatch) -> WriteResult:
        result = WriteResult()
        cur = conn.cursor()
        if batch.n_uplinks:
            self._copy(cur, UPLINKS, batch.uplinks, batch.n_uplinks)
        for t in batch.tables:
            self._copy(cur, t.table, t.fields, len(t.rows))
        if batch.hub_clock:
            self._drop_redelivered(cur, [t.table for t in batch.tables])
        if batch.n_uplinks:
            cur.execute(_insert_stmt(UPLINKS))
            result.stored = max(cur.rowcount, 0)
            result.duplicates = batch.n_uplinks - result.stored
        rollups: dict[str, ReadingTable] = {}
        for t in batch.tables:
            cur.execute(_insert_stmt(t.table))
            stored = max(cur.rowcount, 0)
            result.domain[t.table.name] = result.domain.get(t.table.name, 0) + stored
            if stored and isinstance(t.table, ReadingTable) and t.table.rollup:
                rollups[t.table.name] = t.table
        if rollups:
            cur.execute(_queue_rollups_stmt(list(rollups.values())), [t.rollup for t in rollups.values()])
        if batch.n_dead:
            self._copy(cur, DEAD_LETTERS, batch.dead_letters, batch.n_dead)
            cur.execute(_DEAD_LETTERS)
            result.dead_letters = batch.n_dead
        if any(result.domain.values()):
            cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, notify_payload(result.domain)))
        if len(batch.tracking.dev_eui) or batch.tracking.resets:
            # last: the device state rows stay locked only from here to the commit
            self._track(cur, batch.tracking, result)
        return result

    @staticmethod
    def _drop_redelivered(cur: psycopg.Cursor[Any], tables: list[Table]) -> None:
        gone = cur.execute(_DROP_REDELIVERED).fetchall()
        if not gone:
            return
        euis, times = [g[0] for g in gone], [g[1] for g in gone]
        for table in dict.fromkeys(tables):
            cur.execute(
                sql.SQL(
                    "DELETE FROM {} d USING unnest(%s::text[], %s::timestamptz[]) AS g(dev_eui, time)"
                    " WHERE d.dev_eui = g.dev_eui AND d.time = g.time"
                ).format(sql.Identifier(table.staging)),
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
            fields = copy_fields(
                FCNT_GAPS.columns,
                {"time": g.gap_time, "dev_eui": g.gap_dev, "f_cnt_from": g.gap_from, "f_cnt_to": g.gap_to},
            )
            self._copy(cur, FCNT_GAPS, fields, len(g.gap_dev))
            cur.execute(_insert_stmt(FCNT_GAPS))
            result.gaps = max(cur.rowcount, 0)
            result.missing = int((g.gap_to - g.gap_from + 1).sum())
        if len(g.late):
            self._fill_gaps(cur, tr.dev_eui[g.late], tr.f_cnt[g.late], tr.time[g.late])
            self._late_holes(cur, tr, g.late, result)
        self._update_state(cur, g)

    def _late_holes(self, cur: psycopg.Cursor[Any], tr: Tracking, late: np.ndarray, result: WriteResult) -> None:
        """Record the holes beside late uplinks (:func:`ingest.gaps.late_holes`): an earlier batch committed after
        a later one by another writer, or a backfill, shows a hole only once its uplinks are stored."""
        devs = [bytes(d).decode() for d in tr.dev_eui[late].tolist()]
        times = tr.time[late].astype("datetime64[us]").astype(np.int64).tolist()
        window: dict[str, tuple[int, int]] = {}
        for d, t in zip(devs, times, strict=True):
            lo, hi = window.get(d, (t, t))
            window[d] = (min(lo, t), max(hi, t))
        names = list(window)
        rows = cur.execute(
            _LATE_NEIGHBOURS,
            (names, [window[d][0] for d in names], [window[d][1] for d in names]),
        ).fetchall()
        stored: dict[str, list[tuple[int, int]]] = {}
        for d, f, t_us in rows:
            stored.setdefault(d, []).append((int(f), int(t_us)))
        recorded: dict[str, list[tuple[int, int]]] = {}
        for d, lo, hi in cur.execute(
            "SELECT dev_eui, f_cnt_from, f_cnt_to FROM fcnt_gaps WHERE dev_eui = ANY(%s)", (names,)
        ):
            recorded.setdefault(d, []).append((int(lo), int(hi)))
        mine: dict[str, set[int]] = {}
        for d, f in zip(devs, tr.f_cnt[late].tolist(), strict=True):
            mine.setdefault(d, set()).add(int(f))
        joins: dict[str, list[int]] = {}
        for d_b, when in tr.resets:
            joins.setdefault(bytes(d_b).decode(), []).append(int(when.astype("datetime64[us]").astype(np.int64)))
        holes = late_holes(stored, mine, joins, recorded)
        if not holes:
            return
        cur.execute(
            "INSERT INTO fcnt_gaps (time, dev_eui, f_cnt_from, f_cnt_to)"
            " SELECT timestamptz 'epoch' + t * interval '1 microsecond', d, lo, hi"
            " FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[])"
            " AS h(t, d, lo, hi) ON CONFLICT DO NOTHING",
            (
                [h[3] for h in holes],
                [h[0] for h in holes],
                [h[1] for h in holes],
                [h[2] for h in holes],
            ),
        )
        result.gaps += max(cur.rowcount, 0)
        result.missing += sum(h[2] - h[1] + 1 for h in holes)

    def _update_state(self, cur: psycopg.Cursor[Any], g: GapResult) -> None:
        sessions, no_session = var_from_strings(g.state_session)
        fields = copy_fields(
            DEVICE_STATE.columns,
            {
                "dev_eui": g.state_dev,
                "last_f_cnt": (g.state_f_cnt, g.state_f_cnt < 0),
                "last_time": (g.state_time, np.isnat(g.state_time)),
                "session": (sessions, no_session),
                "last_join": (g.state_join, np.isnat(g.state_join)),
            },
        )
        self._copy(cur, DEVICE_STATE, fields, len(g.state_dev))
        cur.execute(_UPDATE_STATE)

    def _fill_gaps(self, cur: psycopg.Cursor[Any], dev: np.ndarray, f_cnt: np.ndarray, time: np.ndarray) -> None:
        """Late uplinks (a backfill's, mostly) fill the recorded gaps they fall into: split or remove those gaps, and
        note each filled counter in ``fcnt_gaps_closed``."""
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
        closed = [(d, f, gap_time) for gap_time, d, _, _, filled in hits for f in filled]
        cur.execute(
            "INSERT INTO fcnt_gaps_closed (dev_eui, f_cnt, gap_time)"
            " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::timestamptz[]) ON CONFLICT DO NOTHING",
            tuple(list(col) for col in zip(*closed, strict=True)),
        )
        if keep:
            cur.execute(
                "INSERT INTO fcnt_gaps (time, dev_eui, f_cnt_from, f_cnt_to)"
                " SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::bigint[], %s::bigint[])"
                " ON CONFLICT DO NOTHING",
                tuple(list(col) for col in zip(*keep, strict=True)),
            )
