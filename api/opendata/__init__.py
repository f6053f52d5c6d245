"""Open mobility data: one module per standard, each a read-only translation of the summaries the API serves.

* :mod:`.parkapi` - ParkAPI v3 parking sites, spots and source;
* :mod:`.datex2` - DATEX II v3 parking publication light (JSON encoding), built from the ParkAPI items;
* :mod:`.gtfsrt` - GTFS-Realtime VehiclePositions with occupancy.
"""

from __future__ import annotations

from . import datex2, gtfsrt, parkapi

__all__ = ["datex2", "gtfsrt", "parkapi"]
