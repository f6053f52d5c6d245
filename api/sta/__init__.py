"""OGC SensorThings API v1.1, read-only: a translation of the sites, devices and stored readings (never a copy).

* :mod:`.entities` - which stored rows are which entities, with their ids and navigation; :mod:`.quantities` -
  the ObservedProperties with their units (UCUM);
* :mod:`.filter` - the ``$filter`` expression parser; :mod:`.compile` - its translation to SQL;
* :mod:`.options` - the query options; :mod:`.observations` - readings as Observations, keyset paging;
* :mod:`.query` - collections, ``$select`` and ``$expand``; :mod:`.resource` - resource paths to answers.
"""

from __future__ import annotations

from .entities import ENTITY_SETS
from .filter import FilterError, parse_filter
from .quantities import QUANTITIES
from .resource import NotFound, answer, service_root

__all__ = ["ENTITY_SETS", "QUANTITIES", "FilterError", "NotFound", "answer", "parse_filter", "service_root"]
