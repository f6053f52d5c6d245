"""Pickup plan exports: CSV (one row per stop, route order) and GeoJSON (the route line and the stops)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

__all__ = ["CSV_COLUMNS", "FORMULA_START", "neutralise", "plan_csv", "plan_geojson"]

CSV_COLUMNS = (
    "truck",
    "seq",
    "site_id",
    "name",
    "waste_type",
    "lat",
    "lon",
    "fill_pct",
    "expected_fill_pct",
    "threshold_pct",
    "rate_per_day",
    "predicted_full_at",
    "arrival",
    "departure",
    "leg_km",
    "load_l",
    "reason",
    "note",
)


#: text a spreadsheet would run as a formula: a tab or CR first, or =, +, -, @ after any whitespace or control
#: characters (spreadsheets skip those before looking for a formula)
FORMULA_START = re.compile(r"^(?:[\t\r]|[\s\x00-\x1f\x7f-\x9f]*[=+\-@])")


def neutralise(v: Any) -> Any:
    """A CSV cell: times as ISO 8601, None as empty, text that could start a formula behind a quote mark."""
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, str) and FORMULA_START.match(v):
        return "'" + v
    return "" if v is None else v


def plan_csv(plan: dict[str, Any]) -> str:
    """Every field quoted (a CR or LF in a name stays inside its cell), formula starts neutralised."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow(CSV_COLUMNS)
    for stop in plan["data"]:
        w.writerow([neutralise(stop[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def plan_geojson(plan: dict[str, Any]) -> dict[str, Any]:
    depot = [plan["depot"]["lon"], plan["depot"]["lat"]]
    stops = plan["data"]
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "id": "depot",
            "geometry": {"type": "Point", "coordinates": depot},
            "properties": {"role": "depot", "start": plan["start"].isoformat()},
        }
    ]
    for truck in plan.get("trucks", []):  # one line per truck: depot, bins, disposal sites, depot
        features.append(
            {
                "type": "Feature",
                "id": f"route:{truck['truck']}",
                "geometry": {"type": "LineString", "coordinates": [[v["lon"], v["lat"]] for v in truck["visits"]]},
                "properties": {
                    "role": "route",
                    "truck": truck["truck"],
                    "fraction": truck["fraction"],
                    "distance_km": truck["distance_km"],
                    "date": plan["date"].isoformat(),
                    "stops": truck["bins"],
                    "unloads": truck["unloads"],
                },
            }
        )
    for site in plan.get("disposal_sites", []):
        features.append(
            {
                "type": "Feature",
                "id": f"disposal:{site['name']}",
                "geometry": {"type": "Point", "coordinates": [site["lon"], site["lat"]]},
                "properties": {"role": "disposal", "name": site["name"]},
            }
        )
    for s in stops:
        props = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in s.items() if k not in ("lat", "lon")}
        features.append(
            {
                "type": "Feature",
                "id": s["site_id"],
                "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                "properties": {"role": "stop", **props},
            }
        )
    return {"type": "FeatureCollection", "features": features}
