"""Grafana provisioning generated from Python: a PostgreSQL/TimescaleDB datasource with a fixed uid, a dashboard
provider and the waste, parking, buses and fleet-health dashboards (``stadtpuls dashboards build``)."""

from .build import PROVISIONING, BuildOptions, build, dashboards, stale, write
from .macros import QueryContext, expand
from .panels import DATASOURCE, DATASOURCE_TYPE, DATASOURCE_UID

__all__ = [
    "DATASOURCE",
    "DATASOURCE_TYPE",
    "DATASOURCE_UID",
    "PROVISIONING",
    "BuildOptions",
    "QueryContext",
    "build",
    "dashboards",
    "expand",
    "stale",
    "write",
]
