"""The import rule of ``docs/architecture.md``, checked on every module of the ``stadtpuls`` package.

Every module belongs to one room (:func:`room_of`). A room may import its own modules, the rooms in
:data:`MAY_IMPORT` and the stated public modules of other rooms in :data:`STATED`; :data:`NO_LIBRARIES` keeps
transports out of the rooms that must not do I/O. Imports are read with :mod:`ast` from the source, including the
ones inside functions and under ``TYPE_CHECKING``: a lazy import is still a dependency. ``stadtpuls.cli`` reaches
the subcommands by name at run time (``COMMANDS``), which is not an import and not checked.

Today's known violations are listed in :data:`KNOWN_VIOLATIONS`, each with the change that removes it. The list
only shrinks: an entry that no longer matches an import fails the test, so it is deleted when its cause is.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stadtpuls"

CORE_MODULES = frozenset(
    {
        "stadtpuls",
        "stadtpuls.cli",
        "stadtpuls.commands",
        "stadtpuls.fleet",
        "stadtpuls.logs",
        "stadtpuls.schema",
        "stadtpuls.migrate",
        "stadtpuls.migrations",
        "stadtpuls.settings",
        "stadtpuls.tenants",
        "stadtpuls.tenant_roles",
    }
)
DEMO_MODULES = frozenset({"stadtpuls.embedded", "stadtpuls.supervisor"})

# room -> the other rooms whose every module it may import.
MAY_IMPORT: Mapping[str, frozenset[str]] = {
    "core": frozenset(),
    "domain": frozenset(),
    "codecs": frozenset(),
    "ingest": frozenset({"core", "codecs"}),
    "simulators": frozenset({"core", "domain"}),
    "alerts": frozenset({"core", "domain"}),
    "api": frozenset({"core", "domain"}),
    "dashboards": frozenset({"core", "domain"}),
    "bridges": frozenset({"core", "domain"}),
    "demo": frozenset({"core", "domain", "codecs", "ingest", "simulators", "alerts", "api", "dashboards", "bridges"}),
}

# room -> public modules of other rooms it may import besides (``pkg.*``: the package and all its modules).
STATED: Mapping[str, tuple[str, ...]] = {
    "api": ("stadtpuls.ingest.codecs", "stadtpuls.alerts.store", "stadtpuls.alerts.kinds"),
    "simulators": ("stadtpuls.ingest.codecs", "stadtpuls.ingest.envelopes.*"),
    "bridges": ("stadtpuls.api.sta.*", "stadtpuls.api.ngsild.*"),
}

_NETWORK = frozenset({"socket", "ssl", "http", "urllib", "paho", "amqtt", "httpx"})
_DATABASE = frozenset({"psycopg", "psycopg_pool"})
_WEB = frozenset({"fastapi", "starlette", "uvicorn"})

# room -> top-level names of libraries its modules must not import.
NO_LIBRARIES: Mapping[str, frozenset[str]] = {
    "core": _WEB | {"paho", "amqtt"},
    "domain": _NETWORK | _DATABASE | _WEB,
    "codecs": _NETWORK | _DATABASE | _WEB,
    "ingest": _WEB,
    "alerts": _WEB | {"paho", "amqtt"},
    "simulators": _DATABASE | _WEB,
    "api": frozenset({"paho", "amqtt"}),
    "dashboards": frozenset({"paho", "amqtt"}) | _WEB,
    "bridges": _WEB,
    "demo": frozenset(),
}

# Nothing in the package imports these (tools and tests import the package, never the other way round).
OUTSIDE = frozenset({"bench", "tests", "conftest"})

# (importing module, imported module) -> the change that removes the import. Empty this as the changes land.
KNOWN_VIOLATIONS: Mapping[tuple[str, str], str] = {
    ("stadtpuls.fleet", "stadtpuls.ingest.codecs"): "the registry file takes the codec ids from its caller",
}


@dataclass(frozen=True)
class Violation:
    module: str
    imported: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported} ({self.rule})"


def room_of(module: str) -> str | None:
    """The room a module of the package belongs to; ``None`` for a module that no rule covers yet."""
    parts = module.split(".")
    if parts[0] != "stadtpuls":
        return None
    if module in CORE_MODULES:
        return "core"
    if module in DEMO_MODULES or parts[1] == "demo" or parts[1].startswith("demo_"):
        return "demo"
    if parts[1] == "ingest":
        return "codecs" if len(parts) > 2 and parts[2] == "codecs" else "ingest"
    if parts[1] == "planning":
        return "domain"
    if parts[1] == "alerts":
        return "alerts"
    if parts[1] in ("simulators", "api", "dashboards", "bridges"):
        return parts[1]
    return None


def _stated(room: str, target: str) -> bool:
    for entry in STATED.get(room, ()):
        if entry.endswith(".*"):
            base = entry[:-2]
            if target == base or target.startswith(base + "."):
                return True
        elif target == entry:
            return True
    return False


def package_sources(root: Path = PACKAGE) -> dict[str, str]:
    """Module name -> source text of every module under ``stadtpuls/``, following the linked packages."""
    sources: dict[str, str] = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel = Path(folder).relative_to(root).parts
        for name in files:
            if name.endswith(".py"):
                parts = ("stadtpuls", *rel) + (() if name == "__init__.py" else (name[:-3],))
                sources[".".join(parts)] = (Path(folder) / name).read_text(encoding="utf-8")
    return sources


def imports_of(module: str, source: str, known: Iterable[str]) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import statement of a module, relative imports resolved.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, else of ``pkg``.
    """
    known = set(known)
    tree = ast.parse(source, filename=module)
    is_package = any(k.startswith(module + ".") for k in known)
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                sub = f"{origin}.{alias.name}"
                found.append((sub if sub in known else origin, node.lineno))
    return found


def violations(sources: Mapping[str, str]) -> list[Violation]:
    """Every import in ``sources`` against the rule (before the known violations are taken out)."""
    found: list[Violation] = []
    for module, source in sorted(sources.items()):
        room = room_of(module)
        if room is None:
            found.append(Violation(module, "-", 0, "module in no room: add it to room_of and docs/architecture.md"))
            continue
        for target, line in imports_of(module, source, sources):
            top = target.split(".")[0]
            if top in OUTSIDE:
                found.append(Violation(module, target, line, "the package never imports tests or bench"))
            elif top == "stadtpuls":
                other = room_of(target)
                if other is None:
                    found.append(Violation(module, target, line, "imported module in no room"))
                elif other != room and other not in MAY_IMPORT[room] and not _stated(room, target):
                    found.append(Violation(module, target, line, f"{room} must not import {other}"))
            elif top in NO_LIBRARIES[room]:
                found.append(Violation(module, target, line, f"{room} must not import the library {top}"))
    return found


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return package_sources()


def test_every_package_module_is_read(sources: dict[str, str]) -> None:
    rooms = {room_of(m) for m in sources}
    assert {"core", "codecs", "ingest", "simulators", "api", "dashboards", "demo"} <= rooms
    assert "stadtpuls.ingest.writer" in sources and "stadtpuls.api.main" in sources
    assert len(sources) > 100


def test_no_import_breaks_the_architecture_rule(sources: dict[str, str]) -> None:
    broken = [str(v) for v in violations(sources) if (v.module, v.imported) not in KNOWN_VIOLATIONS]
    assert not broken, "imports against docs/architecture.md:\n" + "\n".join(broken)


def test_known_violations_still_exist(sources: dict[str, str]) -> None:
    current = {(v.module, v.imported) for v in violations(sources)}
    stale = [f"{m} -> {t}" for m, t in KNOWN_VIOLATIONS if (m, t) not in current]
    assert not stale, "fixed, delete from KNOWN_VIOLATIONS: " + ", ".join(stale)


def _check(module: str, source: str) -> list[str]:
    sources = {
        "stadtpuls.api": "",
        "stadtpuls.api.planning": "",
        "stadtpuls.dashboards": "",
        "stadtpuls.embedded": "",
        "stadtpuls.ingest": "",
        "stadtpuls.ingest.codecs": "",
        "stadtpuls.ingest.codecs.base": "",
        "stadtpuls.ingest.mqtt": "",
        "stadtpuls.ingest.envelopes": "",
        "stadtpuls.ingest.envelopes.keys": "",
        "stadtpuls.settings": "",
        module: source,
    }
    return [f"{v.imported}: {v.rule}" for v in violations(sources) if v.module == module]


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("stadtpuls.dashboards.build", "from stadtpuls.api.planning import X", "stadtpuls.api.planning"),
        ("stadtpuls.dashboards.build", "from ..api import planning", "stadtpuls.api.planning"),
        ("stadtpuls.dashboards.build", "def f():\n    import stadtpuls.api\n", "stadtpuls.api"),
        ("stadtpuls.ingest.writer", "from ..api import planning", "stadtpuls.api.planning"),
        ("stadtpuls.ingest.writer", "from stadtpuls.simulators import city", "stadtpuls.simulators"),
        ("stadtpuls.ingest.writer", "from stadtpuls import embedded", "stadtpuls.embedded"),
        ("stadtpuls.ingest.codecs.x", "from ..mqtt import MqttSource", "stadtpuls.ingest.mqtt"),
        ("stadtpuls.ingest.codecs.x", "import psycopg", "psycopg"),
        ("stadtpuls.api.routes.x", "from stadtpuls.ingest.mqtt import MqttSource", "stadtpuls.ingest.mqtt"),
        ("stadtpuls.api.routes.x", "from stadtpuls.ingest.codecs.base import Codec", "stadtpuls.ingest.codecs.base"),
        ("stadtpuls.api.routes.x", "import paho.mqtt.client", "paho.mqtt.client"),
        ("stadtpuls.simulators.x", "from stadtpuls.api import planning", "stadtpuls.api.planning"),
        ("stadtpuls.settings", "from stadtpuls.ingest import writer", "stadtpuls.ingest"),
        ("stadtpuls.settings", "from tests.conftest import REPO", "tests.conftest"),
        ("stadtpuls.planning.pickups", "import psycopg", "psycopg"),
        ("stadtpuls.planning.pickups", "from stadtpuls.settings import Settings", "stadtpuls.settings"),
        ("stadtpuls.newthing", "", "-"),
    ],
)
def test_rule_catches_a_forbidden_import(module: str, source: str, expected: str) -> None:
    found = _check(module, source)
    assert [f for f in found if f.startswith(expected + ":")], found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("stadtpuls.api.routes.x", "from stadtpuls.ingest.codecs import all_codecs\nfrom stadtpuls import settings"),
        ("stadtpuls.simulators.x", "from stadtpuls.ingest.envelopes.keys import derive_key"),
        ("stadtpuls.ingest.writer", "from .codecs import base\nfrom ..settings import Settings\nimport psycopg"),
        ("stadtpuls.dashboards.build", "from stadtpuls.planning import DROP_PCT\nimport yaml"),
        ("stadtpuls.demo.feed", "from stadtpuls.simulators import engine\nfrom stadtpuls.api import main"),
        ("stadtpuls.demo_feed", "from stadtpuls.ingest import service"),
    ],
)
def test_rule_lets_a_permitted_import_pass(module: str, source: str) -> None:
    assert _check(module, source) == []
