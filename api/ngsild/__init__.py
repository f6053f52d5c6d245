"""NGSI-LD (ETSI GS CIM 009), read-only, with the Smart Data Models: the hub's lots, spaces, bins and buses as
context entities for FIWARE platforms, a translation of the API's own summaries, never a copy.

* :mod:`.models` - the entities of each type (``OffStreetParking``, ``ParkingSpot``, ``WasteContainer``,
  ``CrowdFlowObserved``), normalised or as key-values, with their ``@context``;
* :mod:`.filters` - the ``q`` query language and ``georel`` geo-queries for the common cases.
"""

from __future__ import annotations

from .filters import GeoQuery, QueryError, parse_geoquery, parse_q
from .models import CONTEXT, TYPES, key_values

__all__ = ["CONTEXT", "TYPES", "GeoQuery", "QueryError", "key_values", "parse_geoquery", "parse_q"]
