"""``stadtpuls codecs add | list | test``: script codecs on the command line.

``add VENDOR/MODEL FILE.js [--examples FILE] [--map FILE.yaml]`` stores a script (a new version when its text
changed; the examples, a TTN codec YAML or a JSON test file, and the readings map are kept with it), then runs
its examples. ``list`` shows the built-in and the script codecs with their kind, version, fPorts and the number
of devices using each. ``test ID`` runs a script's examples and prints each as passed or failed with the
differences; the exit code is 1 when one failed. A running ``stadtpuls ingest`` loads a new script or version at
its next registry refresh.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
import psycopg
import yaml

from stadtpuls.commands import database_url
from stadtpuls.settings import load

from .codec_scripts import ScriptStoreError, add_script, current_scripts, load_script
from .codecs import CodecError, all_codecs
from .codecs.script import ReadingsMap
from .codecs.script.examples import ExampleResult, load_examples, run_examples

__all__ = ["list_codecs", "setup", "test_codec"]


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(f"stadtpuls: {text}\n")


def _url(args: argparse.Namespace) -> str:
    return str(args.database_url) if args.database_url else database_url(load())


def _read_map(path: str) -> ReadingsMap:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise CodecError(f"{path}: cannot read the readings map: {e}") from None
    return ReadingsMap.parse(doc)


def _print_results(results: list[ExampleResult]) -> None:
    for r in results:
        name = r.example.get("description") or f"fPort {r.example['f_port']} {r.example['bytes_hex']}"
        _out(f"  {'passed' if r.passed else 'FAILED'}: {name}")
        for line in r.differences:
            _out(f"      {line}")
    failed = sum(not r.passed for r in results)
    _out(f"{len(results) - failed} passed, {failed} failed")


def _add(args: argparse.Namespace) -> int:
    try:
        source = Path(args.file).read_text(encoding="utf-8")
        examples = load_examples(args.examples) if args.examples else None
        readings = _read_map(args.map) if args.map else None
    except (OSError, UnicodeDecodeError) as e:
        _err(f"cannot read {args.file}: {e}")
        return 2
    except CodecError as e:
        _err(str(e))
        return 2
    try:
        with psycopg.connect(_url(args)) as conn:
            stored, created = add_script(conn, args.codec_id, source, examples=examples, readings=readings)
    except ScriptStoreError as e:
        _err(str(e))
        return 2
    what = "stored as version" if created else "unchanged, still version"
    _out(f"{stored.codec_id}: {what} {stored.version} (sha256 {stored.sha256[:12]}...)")
    if stored.readings:
        _out("readings: " + ", ".join(f"{q} <- {r['field']}" for q, r in stored.readings.items()))
    if stored.examples:
        _print_results(run_examples(load_script(stored), stored.examples))
    return 0


def list_codecs(url: str) -> list[dict[str, Any]]:
    """Every codec the hub knows: built-ins and the current versions of stored scripts."""
    with psycopg.connect(url) as conn:
        scripts = current_scripts(conn)
        devices: dict[str, int] = dict(conn.execute("SELECT codec, count(*) FROM devices GROUP BY codec").fetchall())
    rows = [
        {
            "id": codec_id,
            "kind": "built-in",
            "version": None,
            "f_ports": list(codec.f_ports),
            "devices": devices.get(codec_id, 0),
        }
        for codec_id, codec in sorted(all_codecs().items())
    ]
    rows += [
        {
            "id": s.codec_id,
            "kind": "script",
            "version": s.version,
            "f_ports": list(s.f_ports),
            "devices": devices.get(s.codec_id, 0),
            "sha256": s.sha256,
            "added_at": s.added_at.isoformat() if s.added_at else None,
        }
        for s in sorted(scripts.values(), key=lambda s: s.codec_id)
    ]
    return rows


def _list(args: argparse.Namespace) -> int:
    rows = list_codecs(_url(args))
    if args.json:
        _out(orjson.dumps(rows).decode())
        return 0
    _out(f"{'id':36} {'kind':8} {'version':>7}  {'fPorts':20} {'devices':>7}")
    for r in rows:
        version = "-" if r["version"] is None else str(r["version"])
        ports = ",".join(map(str, r["f_ports"])) or "-"
        _out(f"{r['id']:36} {r['kind']:8} {version:>7}  {ports:20} {r['devices']:>7}")
    return 0


def test_codec(url: str, codec_id: str) -> list[ExampleResult] | None:
    """Run the examples of a stored script's current version; None when no such script is stored."""
    with psycopg.connect(url) as conn:
        stored = current_scripts(conn, codec_id).get(codec_id)
    if stored is None:
        return None
    return run_examples(load_script(stored), stored.examples)


def _test(args: argparse.Namespace) -> int:
    results = test_codec(_url(args), args.codec_id)
    if results is None:
        kind = "a built-in codec (tested by the project's test suite)" if args.codec_id in all_codecs() else "unknown"
        _err(f"{args.codec_id}: no stored script codec; {kind}")
        return 2
    if not results:
        _out(f"{args.codec_id}: no examples stored (add them with `stadtpuls codecs add ... --examples FILE`)")
        return 0
    _out(f"{args.codec_id}:")
    _print_results(results)
    return 1 if any(not r.passed for r in results) else 0


def setup(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="codecs_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="store a JavaScript codec script (a changed script becomes a new version)")
    add.add_argument("codec_id", metavar="VENDOR/MODEL", help="the codec id devices refer to")
    add.add_argument("file", metavar="FILE.js", help="the script: decodeUplink(input) or Decoder(bytes, port)")
    add.add_argument("--examples", metavar="FILE", help="TTN codec YAML (uplinkDecoder.examples) or JSON test file")
    add.add_argument("--map", metavar="FILE.yaml", help="readings map: hub quantity -> decoded field and scale")
    add.set_defaults(func=_add)
    ls = sub.add_parser("list", help="list built-in and script codecs")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=_list)
    test = sub.add_parser("test", help="run a script codec's examples")
    test.add_argument("codec_id", metavar="ID")
    test.set_defaults(func=_test)
    for action in (add, ls, test):
        action.add_argument("--database-url", help="overrides STADTPULS_DATABASE_URL")
