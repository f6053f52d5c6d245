"""The ``stadtpuls`` command line.

Each subcommand lives beside the code it drives and is listed in ``COMMANDS`` as ``name -> (help, "module:setup")``;
``setup(parser)`` adds the subcommand's arguments and sets ``func`` (called with the parsed args, returns the exit
code). Modules are imported only when their subcommand runs, so ``stadtpuls --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import import_module

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "print-settings": ("show the effective settings, secrets masked", "stadtpuls.commands:setup_print_settings"),
    "migrate": ("create or update the database schema", "stadtpuls.commands:setup_migrate"),
    "decode": ("decode payloads (JSON lines on stdin) with a codec", "stadtpuls.ingest.decode_command:setup"),
    "ingest": ("run the MQTT ingest service", "stadtpuls.ingest.service:setup"),
    "backfill": ("fetch a TTS source's stored uplinks by hand", "stadtpuls.ingest.backfill_cli:setup"),
    "tenants": ("manage the towns one hub serves (add, update, list)", "stadtpuls.tenants:setup"),
    "devices": ("manage the device registry (import, list)", "stadtpuls.ingest.devices:setup"),
    "codecs": ("manage JavaScript codec scripts (add, list, test)", "stadtpuls.ingest.codec_admin:setup"),
    "redecode": ("decode stored uplinks again with a codec's current version", "stadtpuls.ingest.redecode:setup"),
    "simulate": ("run the city sensor simulator", "stadtpuls.simulators.cli:setup"),
    "api": ("run the HTTP API and web pages", "stadtpuls.api.cli:setup"),
    "keys": ("manage API keys", "stadtpuls.api.keys_cli:setup"),
    "sta-mqtt": ("publish new SensorThings Observations over MQTT", "stadtpuls.bridges.cli:setup_sta_mqtt"),
    "ngsild-notify": (
        "send changed entities to an NGSI-LD context broker",
        "stadtpuls.bridges.cli:setup_ngsild_notify",
    ),
    "alerts": ("evaluate alert rules and send notifications; rules, acks", "stadtpuls.alerts.cli:setup"),
    "dashboards": ("build the Grafana provisioning files", "stadtpuls.dashboards.cli:setup"),
    "demo": ("run the whole city on embedded services", "stadtpuls.demo.cli:setup"),
}


def _build(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stadtpuls", description="Smart-city IoT data hub for LoRaWAN sensors.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (help_text, target) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module, func = target.split(":")
            setup: Callable[[argparse.ArgumentParser], None] = getattr(import_module(module), func)
            setup(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2 if args.command is None else 0
    from .settings import SettingsError

    try:
        return int(args.func(args) or 0)
    except SettingsError as e:
        print(f"stadtpuls: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
