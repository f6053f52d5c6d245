"""The in-memory device registry of the ingest worker, loaded from ``devices`` and ``sites``.

Every registered device gets a dense index; per-device facts are arrays indexed by it, so a batch resolves its
devices with one dictionary lookup per distinct DevEUI and then works on arrays: codec (a built-in, else the
current version of a stored script codec), site kind, the site's and
its parent's ids, and the numeric parameters the codecs' domain mappings read (a bin's ``depth_mm`` and
``full_mm`` from its site, overridden by the device's own ``params``). The Things Stack devices that arrive
without a DevEUI are found by their ``lns_device_id``. :func:`load_registry` reads everything anew; the worker
calls it when its refresh interval has passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg

from .codec_scripts import codec_resolver
from .codecs import Codec
from .pgcopy import Var, var_from_strings

__all__ = ["KINDS", "Registry", "Stops", "load_registry"]

#: Site kinds with a domain table, by code (0 = no site or a kind without readings).
KINDS = {"bin": 1, "space": 2, "vehicle": 3, "station": 4}
_NUMERIC_SITE_PARAMS = ("depth_mm", "full_mm", "volume_l", "threshold_pct", "capacity")

_QUERY = """
SELECT d.dev_eui, d.codec, d.site_id, d.lns_device_id, d.params, d.lns_application_id,
       s.kind, s.parent_id, s.depth_mm, s.full_mm, s.volume_l, s.threshold_pct, s.capacity, s.params
FROM devices d LEFT JOIN sites s ON s.site_id = d.site_id
ORDER BY d.dev_eui
"""
_STOPS = "SELECT site_id, parent_id, lat, lon FROM sites WHERE kind = 'stop' AND lat IS NOT NULL AND lon IS NOT NULL"


@dataclass
class Stops:
    """Bus stops with a position, grouped by line: ``by_line[line_id] = (stop ids, lat, lon)``."""

    by_line: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class Registry:
    dev_euis: np.ndarray  # S16, one per device index
    codec_ids: list[str]  # distinct codec ids; ``codec[i]`` indexes this list (-1: codec not installed)
    codecs: list[Codec | None]
    codec: np.ndarray  # int16 per device
    kind: np.ndarray  # int8 per device (KINDS)
    site_id: Var  # text per device ('' without site)
    has_site: np.ndarray  # bool per device
    parent_id: Var  # the site's parent (lot of a space, line of a vehicle)
    has_parent: np.ndarray
    params: dict[str, np.ndarray]  # float64 per device, NaN where unknown
    stops: Stops
    by_eui: dict[bytes, int]
    by_lns_id: dict[str, int]
    site_names: list[str] = field(default_factory=list)
    parent_names: list[str] = field(default_factory=list)
    # the network-server application each device is registered with (``app`` or ``app@tenant``) and its
    # network-server device id, None where not registered (object arrays, one per device index)
    app_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    lns_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))

    def __len__(self) -> int:
        return len(self.dev_euis)

    def lookup(self, dev_eui: np.ndarray, lns_device_id: np.ndarray | None = None) -> np.ndarray:
        """Device index per row (-1 for unknown devices), by DevEUI, else by The Things Stack device id."""
        n = len(dev_eui)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        uniq, inverse = np.unique(dev_eui, return_inverse=True)
        get_eui = self.by_eui.get
        found = np.fromiter((get_eui(bytes(u), -1) for u in uniq), dtype=np.int64, count=len(uniq))
        idx = found[inverse.reshape(-1)]
        if lns_device_id is not None and self.by_lns_id:
            for i in np.flatnonzero(idx < 0).tolist():
                name = lns_device_id[i]
                if name is not None:
                    idx[i] = self.by_lns_id.get(name, -1)
        return idx

    def row_params(self, dev: np.ndarray) -> dict[str, np.ndarray]:
        """The per-row device parameters for the rows of devices ``dev``."""
        return {name: values[dev] for name, values in self.params.items()}


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def load_registry(conn: psycopg.Connection[Any]) -> Registry:
    """Read every device with its site, and the bus stops, into a new :class:`Registry`."""
    rows = conn.execute(_QUERY).fetchall()
    resolve = codec_resolver(conn)
    stop_rows = conn.execute(_STOPS).fetchall()
    n = len(rows)
    codec_ids: list[str] = []
    codecs: list[Codec | None] = []
    codec_pos: dict[str, int] = {}
    codec = np.full(n, -1, dtype=np.int16)
    kind = np.zeros(n, dtype=np.int8)
    params: dict[str, np.ndarray] = {}
    site_names: list[str] = []
    parent_names: list[str] = []
    by_lns_id: dict[str, int] = {}
    app_ids = np.full(n, None, dtype=object)
    lns_ids = np.full(n, None, dtype=object)
    for i, (_eui, codec_id, site_id, lns_id, dparams, app_id, skind, parent, *site_vals) in enumerate(rows):
        app_ids[i], lns_ids[i] = app_id, lns_id
        if codec_id not in codec_pos:
            codec_pos[codec_id] = len(codec_ids)
            codec_ids.append(codec_id)
            codecs.append(resolve(codec_id))
        codec[i] = codec_pos[codec_id]
        kind[i] = KINDS.get(skind or "", 0)
        site_names.append(site_id or "")
        parent_names.append(parent or "")
        if lns_id:
            by_lns_id[lns_id] = i
        merged: dict[str, float] = {}
        for name, value in zip(_NUMERIC_SITE_PARAMS, site_vals[:-1], strict=True):
            if value is not None:
                merged[name] = float(value)
        for source in (site_vals[-1] or {}, dparams or {}):
            for name, value in source.items():
                num = _numeric(value)
                if num is not None:
                    merged[name] = num
        for name, value in merged.items():
            params.setdefault(name, np.full(n, np.nan))[i] = value
    site_var, _ = var_from_strings(site_names)
    parent_var, _ = var_from_strings(parent_names)
    stops = Stops()
    for stop_id, line_id, lat, lon in stop_rows:
        ids, lats, lons = stops.by_line.get(line_id or "", ([], np.zeros(0), np.zeros(0)))
        stops.by_line[line_id or ""] = (ids + [stop_id], np.append(lats, lat), np.append(lons, lon))
    euis = np.array([r[0].encode() for r in rows], dtype="S16") if n else np.zeros(0, dtype="S16")
    return Registry(
        dev_euis=euis,
        codec_ids=codec_ids,
        codecs=codecs,
        codec=codec,
        kind=kind,
        site_id=site_var,
        has_site=np.array([bool(s) for s in site_names], dtype=bool),
        parent_id=parent_var,
        has_parent=np.array([bool(p) for p in parent_names], dtype=bool),
        params=params,
        stops=stops,
        by_eui={bytes(e): i for i, e in enumerate(euis.tolist())},
        by_lns_id=by_lns_id,
        site_names=site_names,
        parent_names=parent_names,
        app_ids=app_ids,
        lns_ids=lns_ids,
    )
