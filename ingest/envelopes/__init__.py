"""LoRaWAN network-server MQTT envelopes -> numpy columns (The Things Stack v3, ChirpStack v4, ChirpStack v3).

Usage::

    from stadtpuls.ingest.envelopes import parse_batch

    batch = parse_batch(topics, payloads, hub_time=time.time(), max_message_bytes=65536, store_simulated=False)
    batch.time, batch.dev_eui, batch.f_port, batch.buf, batch.offsets   # one row per accepted uplink
    batch.index                      # row -> position in the inputs (to ack / dead-letter the right message)
    batch.joins, batch.statuses, batch.logs, batch.ignored, batch.rejects

Every input index ends up in exactly one place: ``batch.index`` (an uplink reading), ``joins`` (the device joined:
its frame counter restarts), ``statuses`` (ChirpStack battery/margin), ``logs`` (ChirpStack log and v3 error
events, e.g. ``UPLINK_F_CNT_RESET``), ``ignored`` (recognised, not a reading: downlink events, locations, MAC-only
uplinks with fPort 0 or no payload -> kind ``"no reading"``, TTS simulated uplinks -> ``"simulated"`` unless
``store_simulated``) or ``rejects`` (dead letters: ``Reject(index, stage, reason)`` with stage ``"size"`` or
``"envelope"``). ``parse_batch`` never raises because of message content.

``batch.row(i)`` gives uplink row i as a dict (tests, logs), ``batch.select(rows)`` a sub-batch with its own
payload buffer (e.g. the rows of one codec). Side events are small dataclasses: ``Join(index, dev_eui,
lns_device_id, app_id, time, lns, session)``, ``Status(index, dev_eui, time, lns, battery_pct, margin,
external_power)``, ``LogEvent(index, dev_eui, time, lns, level, code, description, context)``,
``Ignored(index, kind, lns)``; their ``dev_eui`` is a lower-case hex ``str`` (``""`` for TTS devices without one)
and ``time`` an aware UTC ``datetime``.

Columns of :class:`EnvelopeBatch` (see its docstring for dtypes): ``index, time, hub_clock, dev_eui,
lns_device_id, f_cnt, f_cnt_present, f_port, buf, offsets, rssi, snr, gateways, gateway_id, dr, sf, bandwidth,
frequency, lns, dedup_key, simulated, decoded, app_id, session``. Devices: ChirpStack rows always carry
``dev_eui``; TTS rows carry ``lns_device_id`` (the TTS device id) and ``dev_eui`` when the message has one, else
``b""`` -- resolve such rows by ``lns_device_id``.

Reading time (``time``, UTC, microseconds): TTS ``uplink_message.received_at``, else the top-level
``received_at``, else ``hub_time``; ChirpStack v4 ``time``, replaced by the first gateway's ``nsTime`` when the
two differ by more than 30 s or ``time`` is out of range (a gateway with a wrong clock), ``nsTime`` or
``hub_time`` when ``time`` is absent; ChirpStack v3 ``publishedAt``, else the first gateway's ``time`` (skipped when
out of range), else ``hub_time``. Uplinks timed by ``hub_time`` (``hub_clock`` True) are made distinct per
device: the k-th distinct uplink of a device in the batch is read at ``hub_time`` + k µs
(:mod:`ingest.envelopes.hub_clock`). The Go zero time (year 1) counts as missing. A timestamp that is not RFC 3339
with an offset, or a server time outside 2000..2100 that no rule replaces, rejects the message.

Deduplication key (``dedup_key``, 16 bytes, a UUID): ChirpStack v4 ``deduplicationId``; otherwise a UUIDv8
derived from the message (:mod:`ingest.envelopes.keys`): TTS (application id, device id, session_key_id, f_cnt,
NS received_at; without it, f_port, payload, radio settings and every gateway's reception), simulated TTS uplinks
(application id, device id, top-level received_at), ChirpStack v3 (DevEUI, fCnt, gateway uplink ids, publishedAt
or gateway time; when none of these exist, DevEUI, devAddr, fCnt, payload, radio settings and every gateway's
reception). The same message always gives the same key.

Dialect detection uses the payload (formats README section 4): ``end_device_ids`` -> TTS, ``deviceInfo`` ->
ChirpStack v4, ``applicationID`` + ``devEUI`` -> ChirpStack v3 (hex DevEUI: ``json_v3``, base64: Protobuf-JSON),
``payload_raw`` -> TTN V2 (rejected). The topic's last level only settles ambiguous ChirpStack event shapes.

Message builders in the real formats, for simulators and tests: :mod:`simulators.messages`.

Exceptions::

    EnvelopeError   one message is unusable (attributes: reason, lns); caught inside parse_batch -> Reject
"""

from .batch import DEFAULT_MAX_MESSAGE_BYTES, parse_batch
from .model import (
    LNS_CHIRPSTACK_V3,
    LNS_CHIRPSTACK_V4,
    LNS_TTS,
    EnvelopeBatch,
    EnvelopeError,
    Ignored,
    Join,
    LogEvent,
    Reject,
    Status,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "LNS_CHIRPSTACK_V3",
    "LNS_CHIRPSTACK_V4",
    "LNS_TTS",
    "EnvelopeBatch",
    "EnvelopeError",
    "Ignored",
    "Join",
    "LogEvent",
    "Reject",
    "Status",
    "parse_batch",
]
