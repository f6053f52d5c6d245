"""``stadtpuls sta-mqtt`` (the SensorThings MQTT extension's publisher) and ``stadtpuls ngsild-notify`` (changed
entities to an NGSI-LD context broker), each until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from stadtpuls.commands import database_url
from stadtpuls.logs import configure_logging
from stadtpuls.settings import load

__all__ = ["setup_ngsild_notify", "setup_sta_mqtt"]


def _run(args: argparse.Namespace) -> int:
    from .sta_mqtt import StaMqttBridge

    settings = load()
    configure_logging(settings.log_level, settings.log_format)
    if settings.mqtt_url is None:
        raise SystemExit("stadtpuls: STADTPULS_MQTT_URL is not set (mqtt://user:pass@host:1883)")
    tls: dict[str, Any] = {
        "ca_certs": str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
        "certfile": str(settings.mqtt_cert_file) if settings.mqtt_cert_file else None,
        "keyfile": str(settings.mqtt_key_file) if settings.mqtt_key_file else None,
    }
    bridge = StaMqttBridge(database_url(settings), settings.mqtt_url.get_secret_value(), settings.sta_base_url, tls=tls)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: bridge.stop())
    bridge.run()
    return 0


def setup_sta_mqtt(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=_run)


def _run_notify(args: argparse.Namespace) -> int:
    import asyncio

    from .ngsild_notify import NgsiLdNotifier

    settings = load()
    configure_logging(settings.log_level, settings.log_format)
    if not settings.ngsild_broker_url:
        raise SystemExit("stadtpuls: STADTPULS_NGSILD_BROKER_URL is not set (http://broker:1026)")
    notifier = NgsiLdNotifier(
        database_url(settings),
        settings.ngsild_broker_url,
        tz=settings.timezone,
        max_age_days=settings.api_max_range_days,
        interval=settings.ngsild_notify_interval,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, notifier.stop)
        await notifier.run()

    asyncio.run(main())
    return 0


def setup_ngsild_notify(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=_run_notify)
