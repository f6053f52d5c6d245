"""ESP32-Paxcounter codec, "packed" payload format (``opensource/esp32-paxcounter``).

Each (fPort, length) selects a fixed layout of little-endian fields packed back to back (:data:`LAYOUTS`); the
batch is grouped by (fPort, length) and every group is decoded as a 2-D array with fixed column offsets. Every
object also has ``bytes`` (the payload as a list of byte values) and ``port``; fPort 1 objects have ``pax`` =
``wifi`` + ``ble`` (each where present, 0 when neither is).

Lengths, as in the official decoder:

* fPort 1 (counters): only the listed lengths decode; any other length gives ``bytes``, ``port`` and ``pax:
  0``.
* fPort 2 (status): exactly 20 bytes; other lengths give only ``bytes`` and ``port``. fPort 9 (time): 1 or 5
  bytes, likewise.
* fPorts 3, 5, 7, 8, 10 read the leading bytes of their layout and ignore any further bytes; fPort 4 is the
  8-byte short form or reads 13 bytes. A frame shorter than its layout makes the official decoder throw; such
  rows are rejected (``ok`` False, ``"fPort N frame needs ... bytes, got M"``).
* Other fPorts: only ``bytes`` and ``port``.

"uint32" fields (``memory``, ``restarts``, ``time``) and the 8-byte ``uptime`` are folded to signed 32 bits
the way the official decoder's bit operations do (see the codec vectors README).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .arrays import Builder
from .base import Codec, Column, Decoded, EncodeError, FieldSpec
from .codec_registry import register
from .encoding import batch_size, field_values
from .fill_level import column_or_absent
from .paxcounter_fields import FLAGS, PAYLOADMASK, READERS
from .raw_columns import RawColumn
from .record_layout import as_batch, padded_copy, port_length_groups

__all__ = ["LAYOUTS", "Paxcounter"]

_L1 = ("latitude", "latlng")
_L2 = ("longitude", "latlng")
_GPS_TAIL = (("sats", "u8"), ("hdop", "hdop"), ("altitude", "alt"))
_STATUS = (
    ("voltage", "u16"),
    ("uptime", "uptime"),
    ("cputemp", "u8"),
    ("memory", "i32"),
    ("reset0", "u8"),
    ("restarts", "i32"),
)
_CONFIG = (
    ("loradr", "u8"),
    ("txpower", "u8"),
    ("rssilimit", "i16"),
    ("sendcycle", "u8"),
    ("wifichancycle", "u8"),
    ("blescantime", "u8"),
    ("sleepcycle", "u16"),
    ("flags", "flags"),
    ("payloadmask", "payloadmask"),
    ("version", "version"),
)

#: (fPort, length) -> fields in payload order as (key, reader name). Length None: the layout's own length,
#: read from frames at least that long.
LAYOUTS: dict[tuple[int, int | None], tuple[tuple[str, str], ...]] = {
    (1, 2): (("wifi", "u16"),),
    (1, 4): (("wifi", "u16"), ("ble", "u16")),
    (1, 8): (("wifi", "u16"), ("ble", "u16"), ("PM10", "u16"), ("PM25", "u16")),
    (1, 10): (_L1, _L2, ("wifi", "u16")),
    (1, 12): (_L1, _L2, ("wifi", "u16"), ("ble", "u16")),
    (1, 15): (("wifi", "u16"), _L1, _L2, *_GPS_TAIL),
    (1, 17): (("wifi", "u16"), ("ble", "u16"), _L1, _L2, *_GPS_TAIL),
    (2, 20): _STATUS,
    (3, None): _CONFIG,
    (4, 8): (_L1, _L2),
    (4, None): (_L1, _L2, *_GPS_TAIL),
    (5, None): (("button", "u8"),),
    (7, None): (("temperature", "temp"), ("pressure", "p10"), ("humidity", "u100"), ("air", "u100")),
    (8, None): (("voltage", "u16"),),
    (9, 1): (("timesync_seqno", "u8"),),
    (9, 5): (("time", "i32"), ("timestatus", "u8")),
    (10, None): (("ens", "u16"),),
}
_MIN_LEN = {port: sum(READERS[r].width for _, r in fields) for (port, ln), fields in LAYOUTS.items() if ln is None}


def _layout(port: int, length: int) -> tuple[tuple[tuple[str, str], ...] | None, str | None]:
    """The layout of a frame, or None for "only bytes and port", or an error text."""
    exact = LAYOUTS.get((port, length))
    if exact is not None:
        return exact, None
    if port == 4 and length == 8:
        return LAYOUTS[(4, 8)], None
    if port in _MIN_LEN:
        need = _MIN_LEN[port]
        if length >= need:
            return LAYOUTS[(port, None)], None
        what = f"8 or at least {need}" if port == 4 else f"at least {need}"
        return None, f"fPort {port} frame needs {what} bytes, got {length}"
    return None, None


def _keys(fields: tuple[tuple[str, str], ...]) -> list[str]:
    out: list[str] = []
    for key, reader in fields:
        bits = FLAGS if reader == "flags" else PAYLOADMASK if reader == "payloadmask" else None
        out.extend(f"{key}.{name}" for name, _ in bits) if bits else out.append(key)
    return out


_UNITS = {
    "wifi": "devices",
    "ble": "devices",
    "pax": "devices",
    "PM10": "ug/m3",
    "PM25": "ug/m3",
    "latitude": "deg",
    "longitude": "deg",
    "altitude": "m",
    "voltage": "mV",
    "uptime": "s",
    "cputemp": "degC",
    "memory": "bytes",
    "sendcycle": "2 s",
    "temperature": "degC",
    "pressure": "hPa",
    "humidity": "%RH",
    "time": "s",
    "rssilimit": "dBm",
    "blescantime": "s",
    "sleepcycle": "10 s",
}


def _declare() -> tuple[FieldSpec, ...]:
    specs: dict[str, FieldSpec] = {
        "bytes": FieldSpec("bytes", "bytes", "", "the payload as byte values"),
        "port": FieldSpec("port", "int", "", "the fPort"),
    }
    for fields in LAYOUTS.values():
        for (key, reader), names in zip(fields, (_keys((f,)) for f in fields), strict=True):
            kind = READERS[reader].kind
            for name in names:
                specs.setdefault(name, FieldSpec(name, kind, _UNITS.get(key, "")))
    specs["pax"] = FieldSpec("pax", "int", "devices", "wifi + ble")
    return tuple(specs.values())


class Paxcounter(Codec):
    id = "opensource/esp32-paxcounter"
    f_ports = (1, 2, 3, 4, 5, 7, 8, 9, 10)
    fields = _declare()
    quantities = ("pax_count", "temperature_c", "humidity_pct", "battery_v")

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        ports, buf, offsets = as_batch(f_port, buf, offsets)
        n = len(ports)
        out = Builder(n, self.fields)
        for rows, port, length, data in port_length_groups(padded_copy(buf), offsets, ports):
            fields, error = _layout(port, length)
            if error is not None:
                out.fail(rows, error)
                continue
            wifi_ble = np.zeros(len(data), dtype=np.int64)
            offset = 0
            for key, reader_name in fields or ():
                reader = READERS[reader_name]
                values = reader.read(data, offset)
                if isinstance(values, dict):
                    for name, v in values.items():
                        out.set(f"{key}.{name}", rows, v)
                else:
                    out.set(key, rows, values)
                    if port == 1 and key in ("wifi", "ble"):
                        wifi_ble += values
                offset += reader.width
            if port == 1:
                out.set("pax", rows, wifi_ble)
            out.set("port", rows, port)
        decoded = out.build()
        decoded.columns["bytes"] = RawColumn(buf, offsets, decoded.ok.copy(), "list")
        return decoded

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        fields, error = _layout(f_port, len(payload))
        if error is not None:
            return {"errors": [error]}
        obj: dict[str, Any] = {}
        offset = 0
        for key, reader_name in fields or ():
            reader = READERS[reader_name]
            obj[key] = reader.read_row(payload[offset : offset + reader.width])
            offset += reader.width
        if f_port == 1:
            obj["pax"] = obj.get("wifi", 0) + obj.get("ble", 0)
        obj["bytes"] = list(payload)
        obj["port"] = f_port
        return obj

    def encode(self, f_port: int, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Encode one layout of ``f_port``, chosen by the set of fields given (fPort 1: which counters and
        whether GPS; fPort 4: with or without sats/hdop/altitude; fPort 9: ``timesync_seqno`` or ``time`` +
        ``timestatus``). ``bytes``, ``port`` and ``pax`` are derived from the payload and cannot be given."""
        given = set(columns)
        for derived in ("bytes", "port", "pax"):
            if derived in given:
                raise EncodeError(self.id, derived, "is derived from the payload and cannot be encoded")
        layout = None
        for (port, _), fields in LAYOUTS.items():
            if port == f_port and set(_keys(fields)) == given:
                layout = fields
                break
        if layout is None:
            raise EncodeError(
                self.id, ",".join(sorted(given)) or "*", f"no fPort {f_port} layout has exactly these fields"
            )
        n = batch_size(columns)
        blocks = []
        for key, reader_name in layout:
            reader = READERS[reader_name]
            try:
                if reader_name in ("flags", "payloadmask"):
                    bits = FLAGS if reader_name == "flags" else PAYLOADMASK
                    value: Any = {name: field_values(self.id, columns, f"{key}.{name}", n) for name, _ in bits}
                else:
                    value = field_values(self.id, columns, key, n)
                blocks.append(reader.write(value, n))
            except ValueError as exc:
                raise EncodeError(self.id, key, str(exc)) from None
        data = np.concatenate(blocks, axis=1)
        return data.reshape(-1), np.arange(n + 1, dtype=np.int64) * data.shape[1]

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        port = column_or_absent(decoded, "port", np.int64)
        pax = column_or_absent(decoded, "pax")
        counted = column_or_absent(decoded, "wifi").present | column_or_absent(decoded, "ble").present
        volt = column_or_absent(decoded, "voltage")
        bme = port.present & (port.values == 7)
        temperature = column_or_absent(decoded, "temperature")
        humidity = column_or_absent(decoded, "humidity")
        return {
            "pax_count": Column(pax.values, pax.present & counted),
            "temperature_c": Column(temperature.values, temperature.present & bme),
            "humidity_pct": Column(humidity.values, humidity.present & bme),
            "battery_v": Column(volt.values / 1000.0, volt.present),
        }


register(Paxcounter())
