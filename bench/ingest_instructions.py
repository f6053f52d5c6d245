"""Instructions per uplink of the hub's ingest path, counted by valgrind's callgrind: figures that repeat on a
loaded machine, where wall clock and CPU time move by 10 % from run to run.

The workload is fixed and deterministic: N uplinks of the load generator (:func:`simulators.loadgen.make_uplinks`
on :func:`~simulators.loadgen.make_fleet`'s 2,000 devices, as ``bench.ingest`` builds them: TTS v3 and ChirpStack
v4 envelopes, four device models), built before the count starts. A child process, run under ``valgrind
--tool=callgrind``, hands them in batches of ``--batch-size`` to the ingest worker's batch handling
(``Worker.handle``: parse, resolve, decode, map, the writer threads' COPY and commit on real connections) into a
fresh, migrated database with the fleet registered. The database server's work is not counted; every thread of the
hub's process is. Counted sections, each after an uncounted warm-up of the same work:

* **ingest**: every batch after the first (the first warms up: registry, prepared statements, caches);
* **envelopes**: ``parse_batch`` of the second batch's messages (after parsing the first);
* **codec NAME**: one ``decode`` of ``--codec-n`` payloads of ``bench.codecs``' mix of each built-in codec (after
  one decode of the same batch).

The child marks the end of each section by calling ``getsid(2)`` (``os.getsid``), and callgrind writes the costs
since the previous mark to a file of its own (``--dump-before=getsid``), so start-up, imports and the warm-ups are
left out. Counts vary by well under 1 % between runs (``--repeat``). ``--keep DIR`` keeps the callgrind files for
``callgrind_annotate --inclusive=yes DIR/callgrind.out.<run>.<part>``.

To count another tree (an older commit in its own worktree and venv), run this file with that tree's Python and
``--tree``: the tree's own modules (and its ``bench.codecs``) are imported, the input digests printed show that both
counted the same messages and payloads::

    python -m bench.ingest_instructions [--count 40000] [--batch-size 10000] [--codec-n 200000] [--repeat 1]
    /path/to/other/.venv/bin/python bench/ingest_instructions.py --tree /path/to/other
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parents[1]
HUB_TIME = 1767600000.0  # 2026-01-05 08:00 UTC: the envelopes' hub time, two hours after the first uplink


def _module(*names: str) -> ModuleType:
    """The first of ``names`` that imports: the trees before the package layout (``ingest.loadgen``) and after it
    (``stadtpuls.simulators.loadgen``)."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is None or not name.startswith(e.name):
                raise
    raise ModuleNotFoundError(f"none of {', '.join(names)}")


def _use_tree(tree: Path) -> None:
    """Import ``tree``'s modules: first on the path, and not this file's folder (run as a file, its modules such
    as ``bench/ingest.py`` would stand in for the tree's packages)."""
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [str(tree)] + [p for p in sys.path if p and Path(p).resolve() != Path(here)]
    os.chdir(tree)


def _mark() -> None:
    """The end of a section: callgrind writes what was counted since the last mark (``--dump-before=getsid``)."""
    os.getsid(0)


# -- the counted process ----------------------------------------------------------------------------------------
class _Acks:
    def __init__(self) -> None:
        self.count = 0

    def ack(self, messages: Any) -> int:
        self.count += len(messages)
        return len(messages)


def child(workdir: Path, db: str, batch_size: int) -> None:
    worker_mod = _module("stadtpuls.ingest.worker", "ingest.worker")
    inbox_mod = _module("stadtpuls.ingest.inbox", "ingest.inbox")
    metrics_mod = _module("stadtpuls.ingest.metrics", "ingest.metrics")
    spool_mod = _module("stadtpuls.ingest.spool", "ingest.spool")
    writer_mod = _module("stadtpuls.ingest.writer", "ingest.writer")
    envelopes = _module("stadtpuls.ingest.envelopes", "ingest.envelopes")
    codecs = _module("stadtpuls.ingest.codecs", "ingest.codecs")
    inputs = pickle.loads((workdir / "inputs.pickle").read_bytes())
    messages: list[tuple[str, bytes]] = inputs["messages"]
    batches = [
        [
            inbox_mod.Message(topic, payload, i + 1, 1, 0)
            for i, (topic, payload) in enumerate(messages[s : s + batch_size])
        ]
        for s in range(0, len(messages), batch_size)
    ]
    sections: list[str] = ["start"]
    acks = _Acks()
    worker = worker_mod.Worker(
        worker_mod.WorkerConfig(batch_size=batch_size),
        inbox_mod.Inbox(len(messages)),
        acks,
        writer_mod.Writer(db),
        spool_mod.Spool(workdir / "spool", 1 << 30),
        metrics_mod.Metrics(),
    )
    assert worker.refresh_registry(force=True), "the device registry could not be read"
    _mark()

    def section(name: str) -> None:
        worker.finish_inflight()
        _mark()
        sections.append(name)

    worker.handle(batches[0])
    section("ingest warm-up")
    for batch in batches[1:]:
        worker.handle(batch)
    section("ingest")
    worker.close()
    if acks.count != len(messages):
        raise RuntimeError(f"{acks.count} of {len(messages)} messages acknowledged")

    topics = [[t for t, _ in messages[s : s + batch_size]] for s in (0, batch_size)]
    payloads = [[p for _, p in messages[s : s + batch_size]] for s in (0, batch_size)]
    envelopes.parse_batch(topics[0], payloads[0], HUB_TIME)
    section("envelopes warm-up")
    envelopes.parse_batch(topics[1], payloads[1], HUB_TIME)
    section("envelopes")

    for codec_id, (port, buf, offsets) in inputs["codecs"].items():
        codec = codecs.get(codec_id)
        codec.decode(port, buf, offsets)
        section(f"codec {codec_id} warm-up")
        codec.decode(port, buf, offsets)
        section(f"codec {codec_id}")
    (workdir / "sections.json").write_text(json.dumps(sections))


# -- the parent: inputs, database, valgrind, figures -------------------------------------------------------------
def build_inputs(count: int, devices: int, codec_n: int, codec_ids: list[str] | None) -> dict[str, Any]:
    """The load generator's messages and fleet, and ``bench.codecs``' batch of each codec."""
    loadgen = _module("stadtpuls.simulators.loadgen", "ingest.loadgen")
    bench_codecs = importlib.import_module("bench.codecs")
    codecs = _module("stadtpuls.ingest.codecs", "ingest.codecs")
    fleet = loadgen.make_fleet(devices)
    ids = codec_ids if codec_ids is not None else sorted(set(codecs.all_codecs()) & set(bench_codecs.MIXES))
    return {
        "messages": loadgen.make_uplinks(fleet, count),
        "fleet": fleet.yaml(),
        "codecs": {codec_id: bench_codecs.build_batch(codec_id, codec_n) for codec_id in ids},
    }


def digests(inputs: dict[str, Any]) -> dict[str, str]:
    """A short digest of each input, to show that two trees counted the same work."""
    out = {"messages": hashlib.blake2b(pickle.dumps(inputs["messages"]), digest_size=8).hexdigest()}
    for codec_id, arrays in inputs["codecs"].items():
        h = hashlib.blake2b(digest_size=8)
        for a in arrays:
            h.update(a.astype("<i8").tobytes())
        out[codec_id] = h.hexdigest()
    return out


def _server_url() -> str:
    for var in ("STADTPULS_BENCH_DATABASE_URL", "STADTPULS_TEST_DATABASE_URL"):
        if os.environ.get(var):
            return os.environ[var]
    return "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_database(server: str, name: str, workdir: Path) -> str:
    import psycopg

    from stadtpuls.fleet import apply, parse_text
    from stadtpuls.migrate import migrate

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(server)._replace(path="/" + name))
    migrate(url)
    with psycopg.connect(url) as conn:
        report = apply(conn, parse_text((workdir / "fleet.yaml").read_text(), "yaml"))
        assert not report.errors, report.errors
    return url


def drop_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stored(url: str) -> tuple[int, int]:
    """Uplinks and dead letters in the database."""
    import psycopg

    with psycopg.connect(url) as conn:
        uplinks = conn.execute("SELECT count(*) FROM uplinks").fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    return (uplinks[0] if uplinks else 0), (dead[0] if dead else 0)


_TOTALS = re.compile(rb"^(?:totals|summary): (\d+)", re.MULTILINE)


def read_parts(out: Path) -> list[int]:
    """Instructions of each dumped part (``out.1``, ``out.2``, ...; ``out`` itself is what followed the last)."""
    parts = []
    k = 1
    while (part := out.with_name(f"{out.name}.{k}")).exists():
        match = _TOTALS.search(part.read_bytes())
        parts.append(int(match.group(1)) if match else 0)
        k += 1
    return parts


def count_once(args: argparse.Namespace, workdir: Path, tree: Path, run: int, keep: Path | None) -> dict[str, int]:
    """One counted child process: instructions per section."""
    server = _server_url()
    name = f"stadtpuls_cg_{os.getpid()}_{run}"
    url = fresh_database(server, name, workdir)
    out = workdir / f"callgrind.out.{run}"
    try:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(workdir), "--tree", str(tree)]
        cmd += ["--database", url, "--batch-size", str(args.batch_size)]
        if not args.native:
            cmd = ["valgrind", "--tool=callgrind", "--dump-before=getsid", f"--callgrind-out-file={out}", *cmd]
        env = {**os.environ, "PYTHONHASHSEED": "0", "STADTPULS_LOG_LEVEL": "WARNING"}
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"the counted process failed:\n{result.stdout}\n{result.stderr[-4000:]}")
        uplinks, dead = stored(url)
        if (uplinks, dead) != (args.count, 0):
            raise RuntimeError(f"stored {uplinks} uplinks and {dead} dead letters, expected {args.count} and 0")
    finally:
        drop_database(server, name)
    sections = json.loads((workdir / "sections.json").read_text())
    if args.native:
        return {}
    parts = read_parts(out)
    if len(parts) != len(sections):
        raise RuntimeError(f"{len(parts)} callgrind parts for {len(sections)} sections: was getsid called elsewhere?")
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        for path in workdir.glob(f"callgrind.out.{run}*"):
            shutil.copy(path, keep / path.name)
        (keep / f"sections.{run}.json").write_text(json.dumps(sections))
    return dict(zip(sections, parts, strict=True))


def per_unit(args: argparse.Namespace, inputs: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Each counted section's divisor and unit."""
    units: dict[str, tuple[int, str]] = {
        "ingest": (args.count - args.batch_size, "uplink"),
        "envelopes": (min(args.batch_size, args.count - args.batch_size), "uplink"),
    }
    for codec_id, (port, _, _) in inputs["codecs"].items():
        units[f"codec {codec_id}"] = (len(port), "payload")
    return units


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest_instructions", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=40_000, help="uplinks through the worker (the first batch warms up)")
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--devices", type=int, default=2000, help="devices of the load fleet, as bench.ingest")
    ap.add_argument("--codec-n", type=int, default=200_000, help="payloads per codec decode")
    ap.add_argument("--codec", action="append", help="only these codecs (default: every one bench.codecs mixes)")
    ap.add_argument("--repeat", type=int, default=1, help="counted processes, one after the other")
    ap.add_argument("--tree", type=Path, default=HERE, help="the source tree whose modules are counted")
    ap.add_argument("--inputs", type=Path, help="read the inputs from this file, or build and write them there")
    ap.add_argument("--keep", type=Path, help="copy the callgrind files here")
    ap.add_argument("--json", type=Path, help="write every run's counts here")
    ap.add_argument("--native", action="store_true", help="run the child without valgrind (a check of the driver)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--database", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    tree = args.tree.resolve()
    _use_tree(tree)
    if args.child is not None:
        child(args.child, args.database, args.batch_size)
        return 0
    if args.count < 2 * args.batch_size:
        ap.error("--count must hold at least two batches (the first warms up)")
    try:
        from bench._report import Report
    except ModuleNotFoundError:  # a tree from before the common report
        Report = None  # type: ignore[assignment,misc]
    if not args.native and shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): nothing counted")
        if Report is not None:
            Report("ingest_instructions").write()
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="stadtpuls-cg-"))
    try:
        t0 = time.perf_counter()
        if args.inputs is not None and args.inputs.exists():
            inputs = pickle.loads(args.inputs.read_bytes())
            source = f"read from {args.inputs}"
        else:
            inputs = build_inputs(args.count, args.devices, args.codec_n, args.codec)
            source = "built"
            if args.inputs is not None:
                args.inputs.write_bytes(pickle.dumps(inputs))
        if len(inputs["messages"]) != args.count:
            ap.error(f"the inputs hold {len(inputs['messages'])} uplinks, not --count {args.count}")
        (workdir / "inputs.pickle").write_bytes(pickle.dumps(inputs))
        (workdir / "fleet.yaml").write_text(inputs["fleet"])
        sums = digests(inputs)
        print(f"tree {tree}; inputs {source} in {time.perf_counter() - t0:.1f} s; digests {json.dumps(sums)}")
        runs = []
        for run in range(args.repeat):
            t0 = time.perf_counter()
            counts = count_once(args, workdir, tree, run, args.keep)
            runs.append(counts)
            print(f"run {run + 1}: {time.perf_counter() - t0:.0f} s")
        if args.native:
            print("the driver ran without valgrind: nothing counted")
            return 0
        units = per_unit(args, inputs)
        report = Report("ingest_instructions") if Report is not None else None
        print(f"{'section':<36} {'instructions':>16}  per unit (each run)")
        for name in runs[0]:
            if name == "start" or name.endswith("warm-up"):
                continue
            n, unit = units[name]
            values = [r[name] / n for r in runs]
            spread = (max(values) - min(values)) / min(values) * 100 if min(values) else 0.0
            each = ", ".join(f"{v:,.1f}" for v in values)
            print(f"{name:<36} {runs[0][name]:>16,}  {each} per {unit} (spread {spread:.2f} %)")
            if report is not None:
                report.figure(name, sorted(values)[len(values) // 2], f"instructions/{unit}")
        if args.json is not None:
            args.json.write_text(
                json.dumps({"tree": str(tree), "digests": sums, "runs": runs, "args": vars(args)}, default=str)
            )
        if report is not None:
            report.write()
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
