"""The on-disk spool: durable appends, ordered replay, truncation, a torn tail, the size limit, one owner."""

from __future__ import annotations

from pathlib import Path

import pytest

from stadtpuls.ingest.spool import Spool, SpoolError


def test_records_replay_in_order_and_the_spool_empties(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    assert spool.append(1.5, ["t/1", "t/2"], [b"a", b"\x00" * 10])
    assert spool.append(2.5, ["t/3"], [b"{}"])
    assert spool.messages == 3 and spool.pending
    first = spool.next_record()
    assert first is not None and first[:3] == (1.5, ["t/1", "t/2"], [b"a", b"\x00" * 10])
    spool.commit(first)
    assert spool.messages == 1
    second = spool.next_record()
    assert second is not None and second[:3] == (2.5, ["t/3"], [b"{}"])
    spool.commit(second)
    assert not spool.pending and spool.size == 0
    assert (tmp_path / "spool.log").stat().st_size == 0
    spool.close()


def test_a_reopened_spool_resumes_after_the_last_committed_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    for i in range(3):
        spool.append(float(i), [f"t/{i}"], [bytes([i])])
    record = spool.next_record()
    assert record is not None
    spool.commit(record)
    spool.close()
    again = Spool(tmp_path, 1 << 20)
    assert again.messages == 2
    record = again.next_record()
    assert record is not None and record[1] == ["t/1"]
    again.close()


def test_a_torn_record_at_the_end_is_dropped_on_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(1.0, ["t/ok"], [b"kept"])
    spool.close()
    with open(tmp_path / "spool.log", "ab") as f:
        f.write(b"SPL1\xff\x00\x00\x00partial")  # a crash in the middle of an append
    again = Spool(tmp_path, 1 << 20)
    assert again.messages == 1
    assert again.append(2.0, ["t/next"], [b"after"])
    r1 = again.next_record()
    assert r1 is not None and r1[2] == [b"kept"]
    again.commit(r1)
    r2 = again.next_record()
    assert r2 is not None and r2[2] == [b"after"]
    again.close()


def test_appends_beyond_the_size_limit_are_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    assert spool.append(1.0, ["t"], [b"x" * 600_000])
    assert not spool.append(2.0, ["t"], [b"y" * 600_000])
    assert spool.messages == 1
    spool.close()


def test_a_spool_directory_has_one_owner(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    with pytest.raises(SpoolError) as err:
        Spool(tmp_path, 1 << 20)
    assert err.value.path == tmp_path
    spool.close()
    Spool(tmp_path, 1 << 20).close()


def test_each_message_keeps_its_source_and_an_older_record_reads_as_not_known(tmp_path: Path) -> None:
    import struct
    import zlib

    spool = Spool(tmp_path, 1 << 20)
    assert spool.append(1.0, ["a/1", "b/1", "a/2"], [b"x", b"y", b"z"], [0, 1, 0])
    assert spool.append(2.0, ["t/1"], [b"w"])  # sources not known
    spool.close()
    # a record of the older layout (no sources), appended as the previous version wrote it
    body = struct.pack("<dI", 3.0, 1) + struct.pack("<HI", 3, 1) + b"old" + b"v"
    with open(tmp_path / "spool.log", "ab") as f:
        f.write(struct.pack("<4sII", b"SPL1", len(body), zlib.crc32(body)) + body)
    again = Spool(tmp_path, 1 << 20)
    assert again.messages == 5
    records = []
    while (record := again.next_record()) is not None:
        records.append((record[0], record[1], record[4]))
        again.commit(record)
    assert records == [(1.0, ["a/1", "b/1", "a/2"], [0, 1, 0]), (2.0, ["t/1"], [-1]), (3.0, ["old"], [-1])]
    again.close()
