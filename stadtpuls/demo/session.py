"""Open the ingest's persistent MQTT session before the ingest runs, so the broker queues the simulator's first
messages (the current state of every sensor) even if they are published before the ingest has subscribed.

The session is the ingest's own (same client id, QoS, topic filters, no clean start); when the ingest connects it
resumes it and receives what was queued.
"""

from __future__ import annotations

import threading
from urllib.parse import unquote, urlsplit

from ..logs import get_logger
from ..settings import Settings

__all__ = ["drop_session", "prepare_session"]

log = get_logger("stadtpuls.demo")
SESSION_EXPIRY_S = 7 * 24 * 3600


def prepare_session(mqtt_url: str, client_id: str, settings: Settings, timeout: float = 10.0) -> bool:
    """Subscribe ``settings.mqtt_topics`` under ``client_id`` with a persistent session; True when done."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.subscribeoptions import SubscribeOptions

    parts = urlsplit(mqtt_url)
    if parts.scheme not in ("mqtt", "tcp") or settings.mqtt_share_group:
        log.info("ingest session not prepared", extra={"reason": "TLS broker or shared subscription"})
        return False
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or "") or None)

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            done.set()
            return
        c.subscribe([(t, SubscribeOptions(qos=settings.mqtt_qos)) for t in settings.mqtt_topics])

    def on_subscribe(c: mqtt.Client, userdata: object, mid: int, reasons: object, props: object) -> None:
        done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, clean_start=False, properties=props)
    except OSError as e:
        log.warning("ingest session not prepared", extra={"reason": str(e)})
        return False
    client.loop_start()
    ok = done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    log.info("ingest session prepared", extra={"client_id": client_id, "ok": ok})
    return ok


def drop_session(mqtt_url: str, client_id: str, timeout: float = 5.0) -> bool:
    """End the session of ``client_id`` on the broker (clean start, no expiry), so the demo leaves nothing queued
    on a broker it does not own. True when the broker confirmed."""
    import paho.mqtt.client as mqtt

    parts = urlsplit(mqtt_url)
    if parts.scheme not in ("mqtt", "tcp"):
        return False
    done = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or "") or None)
    client.on_connect = lambda *args: done.set()
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, clean_start=True)
    except OSError as e:
        log.warning("ingest session not removed", extra={"reason": str(e)})
        return False
    client.loop_start()
    ok = done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    log.info("ingest session removed", extra={"client_id": client_id, "ok": ok})
    return ok
