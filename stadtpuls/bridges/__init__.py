"""Bridges: services that push what the hub stored to other systems as it arrives, read-only on the store.

* :mod:`.sta_mqtt` - the SensorThings API MQTT extension: each new Observation on the hub's broker.
"""

from __future__ import annotations

__all__: list[str] = []
