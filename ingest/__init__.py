"""MQTT ingest: LoRaWAN network-server messages -> columnar batches -> PostgreSQL/TimescaleDB.

Packages and modules, in the order a message passes them: :mod:`ingest.mqtt` (paho network thread) ->
:mod:`ingest.inbox` (bounded hand-over) -> :mod:`ingest.worker` (batches, spool or hold, acks) ->
:mod:`ingest.commit` (one :class:`~ingest.commit.MessageBatch` prepared once, written, split on bad rows,
counted) -> :mod:`ingest.pipeline` (:mod:`ingest.envelopes`, :mod:`ingest.registry`, :mod:`ingest.domain` with
:mod:`ingest.codecs` and :mod:`ingest.stops`) -> :mod:`ingest.writer` (:mod:`ingest.pgcopy`, :mod:`ingest.gaps`),
whose tables are described in :mod:`stadtpuls.schema`;
:mod:`ingest.spool` keeps batches on disk while the database is away; :mod:`ingest.metrics` serves Prometheus
metrics and ``/health``; :mod:`ingest.service` is ``stadtpuls ingest`` (its sources: :mod:`ingest.sources`, one
:mod:`ingest.mqtt` connection each, and :mod:`ingest.backfill` from the TTS Storage Integration through
:mod:`ingest.storage`), :mod:`ingest.backfill_cli` is ``stadtpuls backfill``, :mod:`ingest.devices` is
``stadtpuls devices``. Submodules are imported on use, so ``import ingest.codecs`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["IngestService"]


def __getattr__(name: str) -> Any:
    if name == "IngestService":
        return import_module(".service", __name__).IngestService
    raise AttributeError(name)
