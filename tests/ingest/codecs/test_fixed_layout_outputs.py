"""The fixed-layout codecs' output, byte for byte, on many pseudo-random payloads.

Each codec decodes a batch of payloads drawn from a deterministic byte stream (BLAKE2b in counter mode, so the
batch is the same on every machine and numpy version): fPorts of the device and others, lengths around the
layouts' own, bytes biased towards the values that select frame types (device types, command codes, modes).
The JSON text of every decoded object and error (``stadtpuls decode`` writes the same objects) is hashed;
the expected digests were taken from the codecs as they were before their layouts were described once
(``ingest/codecs/fixed_layout.py``), so any change of a key, its order, a number's type or a float's digits
fails here. The per-message decoder is held to the same objects (key order aside, it is a reference).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from stadtpuls.ingest.codecs import get

EXPECTED = {
    "netvox/r718x": "d9144b2ba2a5eae0f7d9997489a619c207b207d3aa30c7efab880dea4bdd5292",
    "netvox/r719a": "3b95fab3676fd142d84cb2c68f876d776d9bbdff8fe8eb9f035a83aedae4e837",
    "nwave/nps405": "8e25bdb4d1a53cba155e1944e8417ab4ee1db3b149fa471b4bb30edf18ae8985",
    "bosch/tps110": "e4cbd705bae722db7e8830f54a2cf21310ac92a1a9a5ee489a5967e5c109f1e9",
    "dragino/lht65": "7267db206f58f0288f62d16e9e67a984ce60360e083556997be356bd7077c99e",
}
ROWS = 6000
LENGTHS = (0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 11, 11, 12, 17, 18)  # 11 bytes: the Netvox and Dragino frames
# byte positions and the values to plant there (half the time): device types, commands, zero
PLANTS = (
    (1, (0x34, 0xB1, 0x59, 0xAF)),
    (0, (0x01, 0x02, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x8B, 0x8C)),
    (2, (0,)),
)


def stream(seed: str, size: int) -> bytes:
    """``size`` deterministic pseudo-random bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.blake2b(f"{seed}:{counter}".encode(), digest_size=64).digest()
        counter += 1
    return bytes(out[:size])


def batch(codec_id: str) -> tuple[list[int], list[bytes]]:
    codec = get(codec_id)
    ports = [*codec.f_ports, 0, 8, 99, 255]
    picks = stream(codec_id + ":rows", 4 * ROWS)
    data = stream(codec_id + ":bytes", 18 * ROWS)
    f_ports, payloads = [], []
    for i in range(ROWS):
        a, b, c, d = picks[4 * i : 4 * i + 4]
        port = codec.f_ports[a % len(codec.f_ports)] if a < 180 else ports[a % len(ports)]
        payload = bytearray(data[18 * i : 18 * i + LENGTHS[b % len(LENGTHS)]])
        for k, (at, values) in enumerate(PLANTS):
            if at < len(payload) and (c >> k) & 1:
                payload[at] = values[(d + k) % len(values)]
        f_ports.append(port)
        payloads.append(bytes(payload))
    return f_ports, payloads


def digest(codec_id: str) -> str:
    f_ports, payloads = batch(codec_id)
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    buf = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    decoded = get(codec_id).decode(np.array(f_ports, dtype=np.int64), buf, offsets)
    h = hashlib.sha256()
    for obj, error in zip(decoded.objects(), decoded.error.tolist(), strict=True):
        h.update(json.dumps(obj).encode() + b"|" + str(error).encode() + b"\n")
    return h.hexdigest()


@pytest.mark.parametrize("codec_id", sorted(EXPECTED))
def test_decoded_json_is_unchanged_byte_for_byte(codec_id: str) -> None:
    assert digest(codec_id) == EXPECTED[codec_id]


@pytest.mark.parametrize("codec_id", sorted(EXPECTED))
def test_per_message_decoder_gives_the_same_objects(codec_id: str) -> None:
    codec = get(codec_id)
    f_ports, payloads = batch(codec_id)
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    decoded = codec.decode(np.array(f_ports, dtype=np.int64), np.frombuffer(b"".join(payloads), np.uint8), offsets)
    for i, (obj, port, payload) in enumerate(zip(decoded.objects(), f_ports, payloads, strict=True)):
        row = codec.decode_row(port, payload)
        expected = {"errors": [decoded.error[i]]} if obj is None else obj
        assert json.dumps(row, sort_keys=True) == json.dumps(expected, sort_keys=True), f"row {i}"
