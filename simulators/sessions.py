"""LoRaWAN sessions of the simulated devices (OTAA joins, DevAddr, session key id, frame counters) and the
network servers' message identifiers (ChirpStack deduplication ids, TTS correlation ULIDs), all drawn from
streams seeded by the run's seed and start time, so that two runs starting at different times never share a
session or a deduplication id.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from .city import City, stream

__all__ = ["Ids", "Session", "Sessions", "ulid"]

_RFC4648 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = bytes.maketrans(_RFC4648, b"0123456789ABCDEFGHJKMNPQRSTVWXYZ")
_CROCKFORD_ARRAY = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype="S1")


def ulid(ms: int, rand: bytes) -> str:
    """A ULID: 48-bit millisecond time and 80 random bits in Crockford base32 (26 characters).

    The 128-bit value sits right-aligned in 20 bytes; RFC 4648 base32 of those is 32 characters whose last 26
    are exactly the ULID's 5-bit groups, so only the alphabet has to be translated."""
    value = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(rand[:10], "big")
    return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_TO_CROCKFORD).decode()


@dataclass
class Session:
    dev_addr: str  # 8 hex digits, lower case
    session_key_id: str  # base64 of 16 bytes (TTS)
    f_cnt: int  # next frame counter
    joined_us: int


class Sessions:
    """Per-device session state; :meth:`join` starts a new session with the frame counter at 0."""

    def __init__(self, city: City, seed: int, start_us: int) -> None:
        self.rng = stream(seed ^ (start_us // 1_000_000 & 0xFFFFFFFF), "sessions")
        self.city = city
        self.current: dict[int, Session] = {}
        self.joins = 0

    def join(self, dev: int, t_us: int) -> Session:
        device = self.city.devices[dev]
        raw = self.rng.bytes(20)
        prefix = "26" if device.lns == "tts" else "01"  # TTN's NetID 0x13 block; ChirpStack's default NetID 0
        s = Session(prefix + raw[:3].hex(), base64.b64encode(raw[4:20]).decode(), 0, t_us)
        self.current[dev] = s
        self.joins += 1
        return s

    def get(self, dev: int) -> Session | None:
        return self.current.get(dev)

    def next_f_cnt(self, dev: int) -> int:
        s = self.current[dev]
        f = s.f_cnt
        s.f_cnt += 1
        return f


class Ids:
    """Random identifiers the network servers put into their messages, cut from one reproducible byte stream."""

    CHUNK = 1 << 20

    def __init__(self, seed: int, start_us: int) -> None:
        self.rng = stream(seed ^ (start_us // 1_000_000 & 0xFFFFFFFF), "ids")
        self._buf = b""
        self._pos = 0

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._buf):
            self._buf = self._buf[self._pos :] + self.rng.bytes(max(self.CHUNK, n))
            self._pos = 0
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def uuid(self) -> str:
        b = bytearray(self.take(16))
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        h = b.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def ulids(self, ms: int, n: int) -> list[str]:
        raw = self.take(10 * n)
        return [ulid(ms, raw[10 * k : 10 * k + 10]) for k in range(n)]

    def ulid_rows(self, ms: np.ndarray, per_row: int) -> list[list[str]]:
        """``per_row`` ULIDs for each millisecond time in ``ms``, vectorised (same text as :func:`ulid`)."""
        ms = np.repeat(np.asarray(ms, dtype=np.int64), per_row)
        m = len(ms)
        if m == 0:
            return [[] for _ in range(len(ms) // max(per_row, 1))]
        raw = np.empty((m, 16), dtype=np.uint8)
        raw[:, :6] = ((ms[:, None] >> np.arange(40, -1, -8)) & 0xFF).astype(np.uint8)
        raw[:, 6:] = np.frombuffer(self.take(10 * m), dtype=np.uint8).reshape(m, 10)
        bits = np.zeros((m, 130), dtype=np.uint8)
        bits[:, 2:] = np.unpackbits(raw, axis=1)
        groups = bits.reshape(m, 26, 5) @ np.array([16, 8, 4, 2, 1], dtype=np.uint8)
        text = _CROCKFORD_ARRAY[groups].view("S26").reshape(m).astype(str).tolist()
        return [text[k : k + per_row] for k in range(0, m, per_row)]

    def token(self, n_bytes: int) -> str:
        return base64.b64encode(self.take(n_bytes)).decode()

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")
