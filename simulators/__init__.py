"""The simulated town: a seeded, deterministic fleet of waste bins, parking spaces, bus counters and environment
stations that speaks real LoRaWAN payloads in real network-server envelopes, with ground truth and faults.

Usage::

    from stadtpuls.simulators import SimConfig, Simulation, TruthWriter
    sim = Simulation(SimConfig(city="small", seed=7, start_us=..., duration_us=...), TruthWriter("truth.jsonl"))
    for msg in sim.messages():          # Message(t_us, topic, payload), in publication order
        ...

``stadtpuls simulate`` (:mod:`simulators.cli`) runs it against a broker or into a file, replays files, runs load
tests and exports the city's device registry.

The tools that feed the hub live here too, one of each: :mod:`simulators.messages` writes network-server messages
(the simulated city's through :mod:`simulators.uplinks`, tests and drills through its keyword builders),
:mod:`simulators.mqtt_raw` is the raw QoS 1 publisher (``publish_all`` for a prepared list) and
:mod:`simulators.loadgen` generates load (the load mode's templates and the small load fleet).
"""

from .city import SIZES, City, Device, Site, build_city
from .collection import FixedSchedule, Schedule
from .engine import Message, SimConfig, Simulation
from .export import fleet_document, registry_csv, registry_yaml, write_registry
from .faults import DEFAULT_RATES, KINDS, FaultConfig
from .load import LoadReport, LoadRun
from .publish import FileSink, MqttSink, read_messages
from .timebase import parse_duration, parse_start
from .truth import TruthWriter, read_truth

__all__ = [
    "DEFAULT_RATES",
    "KINDS",
    "SIZES",
    "City",
    "Device",
    "FaultConfig",
    "FileSink",
    "FixedSchedule",
    "LoadReport",
    "LoadRun",
    "Message",
    "MqttSink",
    "Schedule",
    "SimConfig",
    "Simulation",
    "Site",
    "TruthWriter",
    "build_city",
    "fleet_document",
    "parse_duration",
    "parse_start",
    "read_messages",
    "read_truth",
    "registry_csv",
    "registry_yaml",
    "write_registry",
]
