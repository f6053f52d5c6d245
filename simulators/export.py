"""The simulated city as a device registry file, in the formats ``stadtpuls devices import`` reads (see
:mod:`stadtpuls.fleet`): YAML ``{"sites": [...], "devices": [...]}`` or CSV with one row per device, the device's
site in ``site_*`` columns and parent sites (lots, lines) as rows without a DevEUI.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import yaml

from stadtpuls.fleet import SITE_COLUMNS

from .city import City, Device, Site

__all__ = ["fleet_document", "registry_csv", "registry_yaml", "write_registry"]

_SITE_FIELDS = tuple(c for c in SITE_COLUMNS if c != "params")  # the registry file's site columns
_DEVICE_FIELDS = ("dev_eui", "codec", "name", "site_id", "lns_device_id", "lat", "lon", "report_interval_s")


def _site(s: Site) -> dict[str, Any]:
    out = {k: getattr(s, k) for k in _SITE_FIELDS if getattr(s, k) is not None}
    if s.params:
        out["params"] = dict(s.params)
    return out


def _device(d: Device) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(d, k) for k in _DEVICE_FIELDS}
    out["params"] = {"model": d.model.key, "lns": d.lns, **d.params}
    return out


def fleet_document(city: City) -> dict[str, list[dict[str, Any]]]:
    """Sites (parents before children) and devices of the city."""
    order = {"lot": 0, "line": 0, "bin": 1, "station": 1, "space": 2, "stop": 2, "vehicle": 2}
    sites = sorted(city.sites, key=lambda s: order[s.kind])  # stable: the city's own order within a rank
    return {"sites": [_site(s) for s in sites], "devices": [_device(d) for d in city.devices]}


def registry_yaml(city: City) -> str:
    return yaml.safe_dump(fleet_document(city), sort_keys=False, allow_unicode=True, width=120)


def registry_csv(city: City) -> str:
    """One row per device with its site; lots and lines (sites without a device) as rows without a DevEUI."""
    site_cols = [f"site_{k}" for k in _SITE_FIELDS if k != "site_id"]
    param_cols = ["param_model", "param_lns"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*_DEVICE_FIELDS, *site_cols, *param_cols], lineterminator="\n")
    writer.writeheader()

    def site_columns(s: Site) -> dict[str, Any]:
        values = {k: getattr(s, k) for k in _SITE_FIELDS if k != "site_id" and getattr(s, k) is not None}
        return {f"site_{k}": ",".join(v) if isinstance(v, list) else v for k, v in values.items()}

    with_device = {d.site_id for d in city.devices}
    for s in city.sites:
        if s.site_id not in with_device and s.kind in ("lot", "line"):
            writer.writerow({"site_id": s.site_id, **site_columns(s)})
    for s in city.sites:
        if s.site_id not in with_device and s.kind not in ("lot", "line"):
            writer.writerow({"site_id": s.site_id, **site_columns(s)})
    for d in city.devices:
        row = {k: getattr(d, k) for k in _DEVICE_FIELDS}
        row.update(site_columns(city.site_by_id[d.site_id]), param_model=d.model.key, param_lns=d.lns)
        writer.writerow(row)
    return buf.getvalue()


def write_registry(city: City, path: str | Path) -> Path:
    """Write the registry as CSV when ``path`` ends in ``.csv``, else as YAML."""
    path = Path(path)
    text = registry_csv(city) if path.suffix.lower() == ".csv" else registry_yaml(city)
    path.write_text(text, encoding="utf-8")
    return path
