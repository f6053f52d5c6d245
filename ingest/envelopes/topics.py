"""The network server a message came from, as far as its MQTT topic tells (for dead letters of messages whose body
cannot be read).

* The Things Stack v3: ``v3/{application id}@{tenant}/devices/{device id}/{event}``.
* ChirpStack v4: ``application/{application id}/device/{DevEUI}/event/{event}``, the application id a UUID.
* ChirpStack v3: ``application/{application id}/device/{DevEUI}/event/{event}`` (or ``.../rx``, ``.../join`` of
  releases before 3.11), the application id an integer.

Any other topic (a custom topic template) gives None: the kind is then unknown.
"""

from __future__ import annotations

import re

from .model import LNS_CHIRPSTACK_V3, LNS_CHIRPSTACK_V4, LNS_TTS

__all__ = ["lns_of_topic"]

_TTS = re.compile(r"v3/[^/]+/devices/[^/]+/")
_CHIRPSTACK = re.compile(r"application/([^/]+)/device/[0-9a-fA-F]{16}/")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def lns_of_topic(topic: str) -> str | None:
    """``tts``, ``chirpstack-v4``, ``chirpstack-v3`` or None (shared-subscription prefixes are not part of a
    received message's topic)."""
    if _TTS.match(topic):
        return LNS_TTS
    m = _CHIRPSTACK.match(topic)
    if m is None:
        return None
    app = m.group(1)
    if _UUID.fullmatch(app):
        return LNS_CHIRPSTACK_V4
    return LNS_CHIRPSTACK_V3 if app.isdigit() else None
