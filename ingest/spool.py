"""The local spool: received messages kept on disk while the database is unreachable.

One append-only file ``spool.log`` in the spool directory holds records, one per batch::

    magic b"SPL2" | body length u32 | crc32 of body u32 | body
    body = hub time f64 | message count u32 | per message: source i16 | per message: topic length u16, payload
           length u32, topic, payload

The source is the position of the message's source (``Message.source``, -1 not known): a replayed message is
checked against the applications its source may deliver like a live one. Records of the older layout ``SPL1``
(no sources) are still read, their sources not known.

Each append is written and fsynced before the batch's messages are acknowledged. ``spool.pos`` (replaced
atomically) holds the offset up to which records have been replayed and committed; when replay reaches the end
of the file, both are truncated. A record cut short by a crash (its messages were never acknowledged, the broker
delivers them again) is dropped when the spool is opened. Appends beyond ``max_bytes`` are refused, so the
caller keeps the messages unacknowledged and stops reading (back-pressure).

Exceptions::

    SpoolError      the spool directory cannot be used (attribute: path)
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

__all__ = ["Spool", "SpoolError", "SpoolRecord"]

_MAGIC = b"SPL2"
_MAGIC_V1 = b"SPL1"  # without the sources
_HEAD = struct.Struct("<4sII")
_BODY_HEAD = struct.Struct("<dI")
_MSG_HEAD = struct.Struct("<HI")

SpoolRecord = tuple[float, list[str], list[bytes], int, list[int]]  # hub time, topics, payloads, end offset, sources


class SpoolError(Exception):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.log_path = self.dir / "spool.log"
            self.pos_path = self.dir / "spool.pos"
            self._lock = open(self.dir / "spool.lock", "a+b")  # noqa: SIM115 - held for the spool's lifetime
            try:
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lock.close()
                busy = "in use by another ingest process (give each worker its own client id)"
                raise SpoolError(self.dir, busy) from None
            self._f = open(self.log_path, "a+b")  # noqa: SIM115
        except OSError as e:
            raise SpoolError(self.dir, str(e)) from e
        self.pos = self._read_pos()
        self.size = self._recover()
        self.messages = self._count_pending()

    def _read_pos(self) -> int:
        try:
            return int(self.pos_path.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _write_pos(self, pos: int) -> None:
        tmp = self.pos_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(str(pos))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.pos_path)
        self.pos = pos

    def _recover(self) -> int:
        """Validate records from the replay position; cut the file at the first damaged one."""
        size = os.fstat(self._f.fileno()).st_size
        if self.pos > size:
            self._write_pos(0)
        end = self.pos
        for record in self._scan(self.pos, size):
            end = record[3]
        if end < size:
            self._f.truncate(end)
            os.fsync(self._f.fileno())
        return end

    def _count_pending(self) -> int:
        return sum(len(record[1]) for record in self._scan(self.pos, self.size))

    def _scan(self, start: int, end: int) -> list[SpoolRecord]:
        out: list[SpoolRecord] = []
        with open(self.log_path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        off = 0
        while off + _HEAD.size <= len(data):
            magic, length, crc = _HEAD.unpack_from(data, off)
            body = data[off + _HEAD.size : off + _HEAD.size + length]
            if magic not in (_MAGIC, _MAGIC_V1) or len(body) != length or zlib.crc32(body) != crc:
                break
            off += _HEAD.size + length
            hub_time, count = _BODY_HEAD.unpack_from(body, 0)
            p = _BODY_HEAD.size
            if magic == _MAGIC:
                sources = list(struct.unpack_from(f"<{count}h", body, p))
                p += 2 * count
            else:
                sources = [-1] * count
            topics, payloads = [], []
            for _ in range(count):
                tl, pl = _MSG_HEAD.unpack_from(body, p)
                p += _MSG_HEAD.size
                topics.append(body[p : p + tl].decode("utf-8", "replace"))
                p += tl
                payloads.append(body[p : p + pl])
                p += pl
            out.append((hub_time, topics, payloads, start + off, sources))
        return out

    @property
    def pending(self) -> bool:
        return self.size > self.pos

    @property
    def pending_bytes(self) -> int:
        return self.size - self.pos

    def append(
        self, hub_time: float, topics: Sequence[str], payloads: Sequence[bytes], sources: Sequence[int] | None = None
    ) -> bool:
        """Durably add one batch (``sources``: each message's source position, None: not known); False (nothing
        written) when it would pass the size limit."""
        n = len(topics)
        src = [-1] * n if sources is None else [s if -1 <= s < 1 << 15 else -1 for s in sources]
        parts = [_BODY_HEAD.pack(hub_time, n), struct.pack(f"<{n}h", *src)]
        for topic, payload in zip(topics, payloads, strict=True):
            t = topic.encode("utf-8", "replace")[:65535]
            parts.append(_MSG_HEAD.pack(len(t), len(payload)))
            parts.append(t)
            parts.append(payload)
        body = b"".join(parts)
        record = _HEAD.pack(_MAGIC, len(body), zlib.crc32(body)) + body
        if self.size + len(record) > self.max_bytes:
            return False
        self._f.seek(0, os.SEEK_END)
        self._f.write(record)
        self._f.flush()
        os.fsync(self._f.fileno())
        if self.size == 0:
            _fsync_dir(self.dir)
        self.size += len(record)
        self.messages += len(topics)
        return True

    def next_record(self) -> SpoolRecord | None:
        """The oldest record not yet replayed (hub time, topics, payloads, end offset, sources), or None."""
        if not self.pending:
            return None
        with open(self.log_path, "rb") as f:
            f.seek(self.pos)
            head = f.read(_HEAD.size)
            _, length, _ = _HEAD.unpack(head)
        records = self._scan(self.pos, self.pos + _HEAD.size + length)
        return records[0] if records else None

    def commit(self, record: SpoolRecord) -> None:
        """The record was written to the database: advance past it; truncate the spool once it is drained."""
        topics, end = record[1], record[3]
        self.messages = max(0, self.messages - len(topics))
        if end >= self.size:
            self._f.truncate(0)
            os.fsync(self._f.fileno())
            self.size = 0
            self.messages = 0
            self._write_pos(0)
        else:
            self._write_pos(end)

    def close(self) -> None:
        self._f.close()
        self._lock.close()
