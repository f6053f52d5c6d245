"""OGC SensorThings API v1.1, read-only: a translation of the sites, devices and stored readings (never a copy).

* :mod:`.entities` - which stored rows are which entities, with their ids, units (UCUM) and navigation;
* :mod:`.filter` - the ``$filter`` expression parser; :mod:`.compile` - its translation to SQL;
* :mod:`.options` - the query options; :mod:`.observations` - readings as Observations, keyset paging;
* :mod:`.query` - collections, ``$select`` and ``$expand``; :mod:`.resource` - resource paths to answers.
"""

from __future__ import annotations

from .entities import ENTITY_SETS, QUANTITIES
from .filter import FilterError, parse_filter
from .resource import NotFound, answer, service_root

__all__ = ["ENTITY_SETS", "QUANTITIES", "FilterError", "NotFound", "answer", "parse_filter", "service_root"]
