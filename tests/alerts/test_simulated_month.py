"""A month of the small town's bins from the simulator, through the real ingest pipeline and writer into the
database (each simulated hour's messages as one batch), with the alert rules evaluated every simulated hour: the
simulator's own device faults (outages, batteries that drain until the device dies, frame-counter resets) raise
exactly the alerts they should, when they should, and nothing else does.

The expected alerts come from the fault plan the simulation reports (:meth:`Simulation.device_faults`) and the
ground truth of what each bin sent, read with each rule's definition as the README states it, never from the
hub's rule code. Every bin is emptied every day (the simulation starts a day before the month, so the first
collection has emptied the part-full bins it starts with) and the sensors see no spurious echoes, so that
``bin_full`` has nothing to say: the test checks that too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from stadtpuls.alerts.evaluate import evaluate
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.pipeline import Pipeline
from stadtpuls.ingest.registry import load_registry
from stadtpuls.ingest.writer import Writer
from stadtpuls.simulators import FaultConfig, SimConfig, Simulation, TruthWriter, build_city, registry_yaml
from stadtpuls.simulators.faults import DeviceFault
from stadtpuls.simulators.timebase import DAY_US, US

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday: the first round is an hour later
DAYS = 30
SIM_START = START - timedelta(days=1)  # a day before: the bins start part-full and are emptied that morning
END = START + timedelta(days=DAYS)
ROUND = timedelta(hours=1)  # the alert rounds, in simulated time
TZ = ZoneInfo("Europe/Berlin")
SEED = 3
FAULTS = "resets=0.0005,silent=0.0006,drain=0.15,echoes=0"
# The rules' definitions (README, Alerts), with the limits the test database's default rules have.
SILENT_INTERVALS = 3
LOW_V, LOW_PCT, HYST_V, HYST_PCT, BATTERY_WINDOW = 3.2, 20.0, 0.05, 3.0, timedelta(hours=48)
RESET_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Expected:
    rule_id: str
    dev_eui: str
    holds_from: datetime  # when the rule's condition first holds
    clears_at: datetime | None  # when it stops holding (None: still at the end)


def _at(us: int) -> datetime:
    return datetime.fromtimestamp(us / US, UTC)


def _rounds() -> list[datetime]:
    return [START + ROUND * k for k in range(1, int((END - START) / ROUND) + 1)]


def _next_collection(t: datetime) -> datetime:
    """The trucks start at 06:00 local every day."""
    local = t.astimezone(TZ)
    start = local.replace(hour=6, minute=0, second=0, microsecond=0)
    return (start if start > local else start + timedelta(days=1)).astimezone(UTC)


@pytest.fixture(scope="module")
def month() -> tuple[Simulation, list[Any], list[dict[str, Any]]]:
    city = build_city("small", SEED, "mixed")
    bins = [s.site_id for s in city.sites_of("bin")]
    config = SimConfig(
        city="small",
        seed=SEED,
        start_us=int(SIM_START.timestamp()) * US,
        duration_us=(END - SIM_START).days * DAY_US,
        faults=FaultConfig.parse(FAULTS),
        schedule=lambda day, now_us: bins,  # every bin, every day
        service_days=(0, 1, 2, 3, 4, 5, 6),
        models=("waste",),
    )
    truth = TruthWriter(keep=True)
    sim = Simulation(config, truth, city)
    messages = sorted(sim.messages(), key=lambda m: m.t_us)  # in publication order; stable for equal instants
    return sim, messages, [ln for ln in truth.lines if "summary" not in ln]


def _store_and_evaluate(conn: psycopg.Connection, url: str, sim: Simulation, messages: list[Any]) -> None:
    """Before each round, the messages the network server published since the last one, as one batch received at
    the round's instant; then the round over what is stored."""
    report = apply(conn, parse_text(registry_yaml(sim.city), "yaml"))
    assert not report.errors, report.errors
    # The replay hands the hub an hour of uplinks at once, up to an hour after the network server's time: the
    # hub's own lag rule would see that, not a device fault (it is tested with planted data in test_evaluate).
    conn.execute("UPDATE alert_rules SET enabled = false WHERE kind = 'ingest_lag'")
    pipeline = Pipeline(load_registry(conn))
    writer = Writer(url)
    k = 0
    try:
        for t in _rounds():
            until_us = int(t.timestamp()) * US
            batch = []
            while k < len(messages) and messages[k].t_us <= until_us:
                batch.append(messages[k])
                k += 1
            if batch:
                prepared = pipeline.prepare([m.topic for m in batch], [m.payload for m in batch], t.timestamp())
                writer.write(prepared.batch)
            evaluate(conn, now=t, next_service=_next_collection(t))
    finally:
        writer.close()


def _first_round_at_or_after(t: datetime) -> datetime:
    k = -(-(t - START) // ROUND)
    return START + ROUND * max(k, 1)


def _episodes(rounds: list[datetime], fires: Any, holds: Any) -> list[tuple[datetime, datetime | None]]:
    """Open and resolve instants of an alert that opens when ``fires(t)`` and stays open while ``holds(t)``."""
    out: list[tuple[datetime, datetime | None]] = []
    opened: datetime | None = None
    for t in rounds:
        if opened is None and fires(t):
            opened = t
        elif opened is not None and not holds(t):
            out.append((opened, t))
            opened = None
    if opened is not None:
        out.append((opened, None))
    return out


def expected_alerts(faults: list[DeviceFault], lines: list[dict[str, Any]], intervals: dict[str, int]) -> set[Any]:
    """(rule, device, opened round, resolved round or None) of every alert the faults call for."""
    sent: dict[str, list[datetime]] = defaultdict(list)
    battery: dict[str, list[tuple[datetime, float | None, float | None]]] = defaultdict(list)
    for ln in lines:
        t = datetime.fromisoformat(ln["t"].replace("Z", "+00:00"))
        sent[ln["dev_eui"]].append(t)
        q = ln["quantities"]
        battery[ln["dev_eui"]].append((t, q.get("battery_v"), q.get("battery_pct")))
    rounds = _rounds()
    out: set[Any] = set()

    # device_silent: each planned silence (an outage, or a battery that died) from the uplink before it; the first
    # round more than `intervals` report intervals after that uplink, until the first uplink after it
    silences = [(f.dev_eui, f.start_us, f.end_us) for f in faults if f.kind == "silent"]
    silences += [(f.dev_eui, f.end_us, None) for f in faults if f.kind == "drain" and f.end_us is not None]
    for dev, start_us, end_us in silences:
        start = _at(start_us)
        if start >= END:
            continue
        before = [t for t in sent[dev] if t < start]
        after = [t for t in sent[dev] if end_us is not None and t >= _at(end_us)]
        if not before:
            continue
        holds_from = before[-1] + timedelta(seconds=SILENT_INTERVALS * intervals[dev])
        clears = after[0] if after else None
        opened = next((t for t in rounds if t > holds_from), None)
        if opened is None or (clears is not None and opened >= clears):
            continue  # no round saw it silent long enough
        out.add(("device-silent", dev, opened, _first_round_at_or_after(clears) if clears else None))

    # battery_low: the newest reading within the window below the limit opens; within the hysteresis it stays open
    for f in faults:
        if f.kind != "drain":
            continue
        readings = battery[f.dev_eui]

        def newest(t: datetime, readings: list[Any] = readings) -> Any:
            seen = [r for r in readings if t - BATTERY_WINDOW < r[0] <= t]
            return seen[-1] if seen else None

        def below(t: datetime, margin_v: float, margin_pct: float, newest: Any = newest) -> bool:
            r = newest(t)
            return r is not None and (
                (r[1] is not None and r[1] < LOW_V + margin_v) or (r[2] is not None and r[2] < LOW_PCT + margin_pct)
            )

        for opened, resolved in _episodes(rounds, lambda t: below(t, 0, 0), lambda t: below(t, HYST_V, HYST_PCT)):
            out.add(("battery-low", f.dev_eui, opened, resolved))

    # frame_loss: a rejoin after earlier uplinks, within the window
    joins: dict[str, list[datetime]] = defaultdict(list)
    for f in faults:
        if f.kind == "resets":
            joins[f.dev_eui].append(_at(f.start_us))
    for dev, times in joins.items():

        def rejoined(t: datetime, times: list[datetime] = times) -> bool:
            return any(t - RESET_WINDOW < j <= t for j in times)

        for opened, resolved in _episodes(rounds, rejoined, rejoined):
            out.add(("frame-loss", dev, opened, resolved))
    return out


def test_a_simulated_month_raises_exactly_the_alerts_of_the_simulators_faults(
    conn: psycopg.Connection, clean_db: str, month: tuple[Simulation, list[Any], list[dict[str, Any]]]
) -> None:
    sim, messages, lines = month
    faults = sim.device_faults()
    kinds = {f.kind for f in faults if f.start_us < int(END.timestamp()) * US}
    assert kinds >= {"silent", "drain", "resets"}, kinds  # the month has every fault kind the test is about
    assert all(not ln["faults"] or ln["faults"] == ["resets"] for ln in lines)  # no message faults but resets
    fills = [ln["quantities"]["fill_pct"] for ln in lines if ln["t"] >= START.isoformat()[:19]]
    assert max(fills) < 60  # emptied every day: no bin near its limit in the month

    _store_and_evaluate(conn, clean_db, sim, messages)
    assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM uplinks").fetchone() == (len(lines),)  # every uplink stored once

    intervals = {d.dev_eui: d.report_interval_s for d in sim.city.devices}
    expected = expected_alerts(faults, lines, intervals)
    rows = conn.execute("SELECT rule_id, subject, opened_at, resolved_at FROM alerts ORDER BY alert_id").fetchall()
    actual = {(r, s, o, c) for r, s, o, c in rows}
    assert len(actual) == len(rows)
    assert {(r, d) for r, d, *_ in expected} == {(r, d) for r, d, *_ in actual}  # the right devices and rules
    missing, extra = expected - actual, actual - expected  # opened and resolved at the rounds the faults call for
    assert not missing and not extra, (sorted(map(str, missing)), sorted(map(str, extra)))
    assert {r for r, *_ in actual} == {"device-silent", "battery-low", "frame-loss"}
