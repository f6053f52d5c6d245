"""The demo's towns: two small simulated towns side by side on one hub, each a tenant with its own branding.

Each town is a simulated city of its own seed, with its site ids prefixed (``nord-bin-0001``) and its centre moved,
so DevEUIs and site ids are distinct across the hub as they are on a real shared network. :func:`register` adds (or
updates) the tenants, imports each town's registry into its tenant and gives each town an operator key; the feed
(:mod:`stadtpuls.demo.feed`) publishes the towns' messages interleaved in time, in one stream.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ..fleet import apply, load_file
from ..tenants import add, get, update
from .services import ServiceError

__all__ = ["TOWNS", "DemoTown", "RegisteredTown", "register", "towns"]


@dataclass(frozen=True)
class DemoTown:
    slug: str
    name: str
    seed_offset: int  # the town's seed is the demo's --seed plus this
    site_prefix: str
    center: tuple[float, float]
    brand_name: str
    colour: str

    def seed(self, base: int) -> int:
        return base + self.seed_offset

    def simulator_args(self, base_seed: int) -> list[str]:
        """The ``stadtpuls simulate`` / feed options that make this town."""
        lat, lon = self.center
        return [
            "--seed",
            str(self.seed(base_seed)),
            "--site-prefix",
            self.site_prefix,
            "--center",
            f"{lat},{lon}",
        ]


TOWNS = (
    DemoTown("nordstadt", "Nordstadt", 0, "nord-", (51.372, 12.37), "Nordstadt bewegt", "#1a6b3c"),
    DemoTown("suedstadt", "Südstadt", 1, "sued-", (51.308, 12.37), "Südstadt live", "#7b2d8b"),
)


def towns(count: int) -> tuple[DemoTown, ...]:
    """The first ``count`` demo towns (``count`` 1: the single town of a one-town install, no tenant)."""
    return TOWNS[:count] if count > 1 else ()


@dataclass(frozen=True)
class RegisteredTown:
    town: DemoTown
    sites: int
    devices: int
    errors: int
    operator_key: str


def _operator_key(url: str, slug: str) -> str:
    """A fresh operator key of the town (the previous demo key of that town is revoked)."""
    from stadtpuls.api.keys_cli import create_key

    name = f"demo operator {slug}"
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,))
    return create_key(url, role="operator", name=name, tenant=slug)


def register(
    url: str, town: DemoTown, *, city: str, base_seed: int, fmt: str, cli: list[str], env: dict[str, str], out: Path
) -> RegisteredTown:
    """Add or update the town's tenant, export its simulated registry to ``out`` and import it into the tenant."""
    fields = {"name": town.name, "brand_name": town.brand_name, "colour": town.colour}
    with psycopg.connect(url) as conn:
        if get(conn, town.slug) is None:
            add(conn, town.slug, fields)
        else:
            update(conn, town.slug, fields)
    cmd = [*cli, "simulate", "--city", city, "--format", fmt, *town.simulator_args(base_seed), "--export-devices"]
    done = subprocess.run([*cmd, str(out)], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise ServiceError("simulator", f"device export of {town.slug} failed: {done.stderr.strip()[-500:]}")
    fleet = load_file(out)
    with psycopg.connect(url) as conn:
        report = apply(conn, fleet, tenant=town.slug)
    key = _operator_key(url, town.slug)
    return RegisteredTown(town, len(fleet.sites), len(fleet.devices), len(report.errors), key)
