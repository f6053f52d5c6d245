"""Small builders of Grafana dashboard JSON: SQL targets, panels, template variables and the dashboard itself.

Every panel and every target names the provisioned PostgreSQL datasource by its fixed uid, so the dashboards work
the moment Grafana starts. Builders return plain dicts (what Grafana stores); :func:`dashboard` numbers the panels
and lays them out on Grafana's 24-column grid, left to right, wrapping to a new row when a panel does not fit.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "DATASOURCE",
    "DATASOURCE_TYPE",
    "DATASOURCE_UID",
    "PROMETHEUS",
    "PROMETHEUS_UID",
    "SCHEMA_VERSION",
    "bargauge",
    "barchart",
    "constant",
    "dashboard",
    "geomap",
    "override",
    "prometheus_timeseries",
    "query_variable",
    "stat",
    "table",
    "target",
    "thresholds",
    "timeseries",
]

DATASOURCE_UID = "stadtpuls-db"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
PROMETHEUS_UID = "stadtpuls-prometheus"  # scrapes the ingest's and the API's /metrics
PROMETHEUS = {"type": "prometheus", "uid": PROMETHEUS_UID}
SCHEMA_VERSION = 39  # Grafana 10.4 / 11.x; newer Grafana migrates it on load
GRID_COLUMNS = 24

Format = Literal["table", "time_series"]
Panel = dict[str, Any]


def target(sql: str, fmt: Format = "table", ref: str = "A") -> dict[str, Any]:
    """A raw-SQL query of the provisioned datasource."""
    return {
        "refId": ref,
        "datasource": dict(DATASOURCE),
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": sql.strip() + "\n",
    }


def prometheus_target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasource": dict(PROMETHEUS),
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend,
        "range": True,
    }


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    """Absolute thresholds: ``(None, "green"), (60, "yellow"), (85, "red")``."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def override(field: str, **props: Any) -> dict[str, Any]:
    """Field override by name; keyword ``custom__cellOptions`` becomes property ``custom.cellOptions``."""
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [{"id": k.replace("__", "."), "value": v} for k, v in props.items()],
    }


def _panel(
    kind: str,
    title: str,
    sql: str,
    *,
    fmt: Format,
    description: str,
    w: int,
    h: int,
    defaults: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
    interval: str | None = None,
) -> Panel:
    panel: Panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": dict(DATASOURCE),
        "gridPos": {"h": h, "w": w, "x": 0, "y": 0},
        "fieldConfig": {"defaults": defaults or {}, "overrides": overrides or []},
        "options": options or {},
        "targets": [target(sql, fmt)],
    }
    if interval:
        panel["interval"] = interval  # minimum $__interval
    return panel


def timeseries(
    title: str,
    sql: str,
    *,
    description: str,
    unit: str = "short",
    bars: bool = False,
    stacked: bool = False,
    interval: str | None = None,
    w: int = 12,
    h: int = 8,
) -> Panel:
    """A time series; the query returns ``time``, optionally ``metric`` (series name) and numeric values."""
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if bars else 10,
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
    }
    return _panel(
        "timeseries",
        title,
        sql,
        fmt="time_series",
        description=description,
        w=w,
        h=h,
        interval=interval,
        defaults={"unit": unit, "color": {"mode": "palette-classic"}, "custom": custom},
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def prometheus_timeseries(
    title: str, queries: list[tuple[str, str]], *, description: str, unit: str = "short", w: int = 12, h: int = 8
) -> Panel:
    """A time series of PromQL ``(expression, legend)`` queries from the provisioned Prometheus datasource."""
    panel = timeseries(title, "", description=description, unit=unit, w=w, h=h)
    panel["datasource"] = dict(PROMETHEUS)
    panel["targets"] = [prometheus_target(e, legend, chr(ord("A") + i)) for i, (e, legend) in enumerate(queries)]
    return panel


def table(
    title: str,
    sql: str,
    *,
    description: str,
    overrides: list[dict[str, Any]] | None = None,
    defaults: dict[str, Any] | None = None,
    w: int = 12,
    h: int = 8,
) -> Panel:
    return _panel(
        "table",
        title,
        sql,
        fmt="table",
        description=description,
        w=w,
        h=h,
        overrides=overrides,
        defaults=defaults or {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"]}},
    )


def stat(
    title: str,
    sql: str,
    *,
    description: str,
    unit: str = "short",
    color: dict[str, Any] | None = None,
    w: int = 6,
    h: int = 4,
) -> Panel:
    """A single number (the first numeric field of a one-row table query)."""
    return _panel(
        "stat",
        title,
        sql,
        fmt="table",
        description=description,
        w=w,
        h=h,
        defaults={"unit": unit, "color": {"mode": "thresholds"}, "thresholds": color or thresholds((None, "green"))},
        options={
            "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "auto",
            "justifyMode": "auto",
        },
    )


def bargauge(
    title: str,
    sql: str,
    *,
    description: str,
    unit: str = "short",
    field: str,
    steps: dict[str, Any],
    maximum: float | None = None,
    w: int = 12,
    h: int = 8,
) -> Panel:
    """One bar per row of a table query: the row's text column names it, ``field`` is its length."""
    defaults: dict[str, Any] = {"unit": unit, "min": 0, "color": {"mode": "thresholds"}, "thresholds": steps}
    if maximum is not None:
        defaults["max"] = maximum
    return _panel(
        "bargauge",
        title,
        sql,
        fmt="table",
        description=description,
        w=w,
        h=h,
        defaults=defaults,
        options={
            "reduceOptions": {"values": True, "calcs": [], "fields": f"/^{field}$/"},
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "left",
        },
    )


def barchart(title: str, sql: str, *, description: str, x: str, unit: str = "short", w: int = 12, h: int = 8) -> Panel:
    """Bars over a text/number category column ``x`` (a pre-bucketed distribution)."""
    return _panel(
        "barchart",
        title,
        sql,
        fmt="table",
        description=description,
        w=w,
        h=h,
        defaults={"unit": unit, "color": {"mode": "palette-classic"}, "custom": {"fillOpacity": 80, "lineWidth": 1}},
        options={
            "xField": x,
            "orientation": "vertical",
            "showValue": "never",
            "stacking": "none",
            "barWidth": 0.9,
            "groupWidth": 0.7,
            "xTickLabelRotation": 0,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
    )


def geomap(
    title: str,
    sql: str,
    *,
    description: str,
    color_field: str,
    steps: dict[str, Any],
    unit: str = "percent",
    w: int = 12,
    h: int = 12,
) -> Panel:
    """Markers at the ``latitude``/``longitude`` columns, coloured by ``color_field`` through ``steps``."""
    layer = {
        "type": "markers",
        "name": "Sensors",
        "config": {
            "showLegend": True,
            "style": {
                "color": {"field": color_field, "fixed": "dark-green"},
                "opacity": 0.85,
                "size": {"fixed": 7, "min": 4, "max": 12},
                "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
            },
        },
        "location": {"mode": "coords", "latitude": "latitude", "longitude": "longitude"},
        "tooltip": True,
    }
    return _panel(
        "geomap",
        title,
        sql,
        fmt="table",
        description=description,
        w=w,
        h=h,
        defaults={"unit": unit, "min": 0, "max": 100, "color": {"mode": "thresholds"}, "thresholds": steps},
        options={
            "view": {"id": "fit", "lat": 0, "lon": 0, "zoom": 13, "allLayers": True},
            "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
            "basemap": {"type": "default", "name": "Basemap", "config": {}},
            "layers": [layer],
            "tooltip": {"mode": "details"},
        },
    )


def query_variable(name: str, label: str, sql: str, *, multi: bool = True) -> dict[str, Any]:
    """A variable filled by a query returning ``__text`` / ``__value``; multi-value with "All" selected."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": dict(DATASOURCE),
        "query": sql.strip(),
        "definition": sql.strip(),
        "refresh": 1,  # on dashboard load
        "multi": multi,
        "includeAll": multi,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi else {},
        "options": [],
        "sort": 1,
        "hide": 0,
    }


def constant(name: str, value: str, description: str) -> dict[str, Any]:
    """A hidden constant, used in SQL as ``'$name'`` (or ``$name`` for numbers)."""
    return {
        "type": "constant",
        "name": name,
        "description": description,
        "query": value,
        "hide": 2,
        "current": {"text": value, "value": value},
        "options": [{"selected": True, "text": value, "value": value}],
    }


def _layout(panels: list[Panel]) -> list[Panel]:
    x = y = row_h = 0
    out = []
    for i, panel in enumerate(panels, start=1):
        w, h = panel["gridPos"]["w"], panel["gridPos"]["h"]
        if x + w > GRID_COLUMNS:
            x, y, row_h = 0, y + row_h, 0
        out.append({"id": i, **panel, "gridPos": {"h": h, "w": w, "x": x, "y": y}})
        x += w
        row_h = max(row_h, h)
    return out


def dashboard(
    uid: str,
    title: str,
    *,
    description: str,
    panels: list[Panel],
    variables: list[dict[str, Any]],
    tz: str,
    refresh: str = "1m",
    time_from: str = "now-7d",
) -> dict[str, Any]:
    """A complete dashboard, shown in the reporting time zone, linked to the other stadtpuls dashboards."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["stadtpuls"],
        "timezone": tz,
        "editable": True,
        "graphTooltip": 1,
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "title": "stadtpuls",
                "tags": ["stadtpuls"],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
                "targetBlank": False,
                "icon": "external link",
            }
        ],
        "templating": {"list": variables},
        "panels": _layout(panels),
    }
