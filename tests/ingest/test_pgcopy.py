"""Binary COPY streams built with numpy are read back by PostgreSQL as the values they encode."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg

from stadtpuls.ingest.pgcopy import Field, Var, encode, var_from_strings


def test_every_column_kind_round_trips_through_postgresql(db_url: str) -> None:
    n = 4
    times = np.array(
        ["2026-01-05T06:00:00.123456", "1999-12-31T23:59:59", "2000-01-01T00:00:00", "2030-06-01T12:00:00"],
        dtype="datetime64[us]",
    )
    keys = np.frombuffer(b"".join(uuid.UUID(int=i * 7919 + 1).bytes for i in range(n)), np.uint8).reshape(n, 16)
    text, text_null = var_from_strings(["grün", None, "", "x" * 300])
    payload = Var(np.frombuffer(b"\x00\x01\xffabc", np.uint8), np.array([0, 2, 3, 3, 6]))
    fields = [
        Field("timestamptz", times),
        Field("uuid", keys),
        Field("text", np.array([b"70b3d52dd600035a", b"ab", b"", b"0102030405060708"], dtype="S16")),
        Field("text", text, text_null),
        Field("bytea", payload),
        Field("int2", np.array([1, -2, 32767, 0]), np.array([False, False, False, True])),
        Field("int4", np.array([7, -70000, 2**31 - 1, 0], dtype=np.int64)),
        Field("int8", np.array([2**40, -1, 0, 5])),
        Field("float4", np.array([1.5, np.nan, -0.25, 3.0], dtype=np.float32), np.array([False, True, False, False])),
        Field("float8", np.array([0.1, 2.5e300, -1.0, 0.0])),
        Field("bool", np.array([True, False, True, False]), np.array([False, False, True, False])),
    ]
    data = encode(fields, n)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "CREATE TEMP TABLE t (ts timestamptz, k uuid, eui text, s text, b bytea, i2 smallint, i4 integer,"
            " i8 bigint, f4 real, f8 double precision, flag boolean)"
        )
        with conn.cursor().copy("COPY t FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(data)
        rows = conn.execute("SELECT * FROM t").fetchall()
    assert [r[0] for r in rows] == [t.item().replace(tzinfo=UTC) for t in times]
    assert [r[1] for r in rows] == [uuid.UUID(bytes=k.tobytes()) for k in keys]
    assert [r[2] for r in rows] == ["70b3d52dd600035a", "ab", "", "0102030405060708"]
    assert [r[3] for r in rows] == ["grün", None, "", "x" * 300]
    assert [bytes(r[4]) for r in rows] == [b"\x00\x01", b"\xff", b"", b"abc"]
    assert [r[5] for r in rows] == [1, -2, 32767, None]
    assert [r[6] for r in rows] == [7, -70000, 2**31 - 1, 0]
    assert [r[7] for r in rows] == [2**40, -1, 0, 5]
    assert [r[8] for r in rows] == [1.5, None, -0.25, 3.0]
    assert [r[9] for r in rows] == [0.1, 2.5e300, -1.0, 0.0]
    assert [r[10] for r in rows] == [True, False, None, False]
    assert rows[0][0] == datetime(2026, 1, 5, 6, 0, 0, 123456, tzinfo=UTC)


def test_var_take_gathers_values_in_any_order() -> None:
    var, _ = var_from_strings(["a", "bcd", "", "ef"])
    picked = var.take(np.array([3, 0, 1, 1, 2]))
    values = [picked.buf[picked.offsets[i] : picked.offsets[i + 1]].tobytes() for i in range(5)]
    assert values == [b"ef", b"a", b"bcd", b"bcd", b""]


def test_empty_stream_is_header_and_trailer(db_url: str) -> None:
    data = encode([Field("int4", np.zeros(0, dtype=np.int32))], 0)
    with psycopg.connect(db_url) as conn:
        conn.execute("CREATE TEMP TABLE e (i integer)")
        with conn.cursor().copy("COPY e FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(data)
        assert conn.execute("SELECT count(*) FROM e").fetchone() == (0,)
