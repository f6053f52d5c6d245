"""Only the network server speaks for a sensor: forged uplinks (topic, application or device id disagreeing with the
message or the registration) and uplinks dated ahead of the hub's clock are dead letters at stage ``source`` and
change no reading; the real uplinks of the same devices are stored. Real broker, real ingest, real database."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest

from stadtpuls.ingest.authentic import topic_ids
from stadtpuls.ingest.service import IngestService
from stadtpuls.ingest.sources import MqttBrokerSource
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink, tts_topic, tts_uplink
from stadtpuls.simulators.mqtt_raw import publish_all

from .conftest import drop_session, ingest_settings, register, scalar, wait_for

APP_CS = "b3a7c1de-0a6f-4c39-9d0e-1f2a3b4c5d6e"
CS_EUI = "0101010101010101"
TTS_EUI = "0202020202020202"
FLEET = f"""
sites:
  - {{site_id: lot-1, kind: lot, name: Markt, capacity: 2}}
  - {{site_id: space-1, kind: space, parent_id: lot-1}}
  - {{site_id: space-2, kind: space, parent_id: lot-1}}
devices:
  - {{dev_eui: "{CS_EUI}", codec: nwave/nps405, site_id: space-1, lns_application_id: "{APP_CS}"}}
  - {{dev_eui: "{TTS_EUI}", codec: nwave/nps405, site_id: space-2, lns_device_id: park-2,
     lns_application_id: city-parking@ttn}}
"""
OCCUPIED = bytes.fromhex("95")  # NPS405 parking status: occupied


def _cs(app: str, topic_app: str, topic_eui: str, when: datetime, f_cnt: int) -> tuple[str, bytes]:
    body = chirpstack_uplink(dev_eui=CS_EUI, application_id=app, time=when, f_port=1, payload=OCCUPIED, f_cnt=f_cnt)
    return chirpstack_topic(topic_app, topic_eui), orjson.dumps(body)


def _tts(app: str, device_id: str, tenant: str, when: datetime, f_cnt: int) -> tuple[str, bytes]:
    body = tts_uplink(
        device_id=device_id, app_id=app, dev_eui=TTS_EUI, received_at=when, f_port=1, payload=OCCUPIED, f_cnt=f_cnt
    )
    return tts_topic(app, device_id, tenant=tenant), orjson.dumps(body)


def test_forged_and_future_uplinks_are_source_dead_letters_and_change_no_reading(
    clean_db: str, broker_url: str, run_ingest: Callable[..., IngestService]
) -> None:
    register(clean_db, FLEET)
    now = datetime.now(UTC)
    forged = [
        # the attack: a registered DevEUI in the body, an attacker's application and device in the topic
        _cs(APP_CS, "attacker-app", "ffffffffffffffff", now - timedelta(seconds=50), 10),
        _cs(APP_CS, APP_CS, "ffffffffffffffff", now - timedelta(seconds=45), 15),
        # topic and body agree, but not with the device's registered application
        _cs("attacker-app", "attacker-app", CS_EUI, now - timedelta(seconds=40), 11),
        # TTS-shaped with a wrong application and device id for the registered DevEUI
        _tts("attacker-app", "park-x", "ttn", now - timedelta(seconds=30), 12),
        # the right application and device id, from another tenant
        _tts("city-parking", "park-2", "evil", now - timedelta(seconds=20), 13),
        # dated a day ahead of the hub's clock
        _cs(APP_CS, APP_CS, CS_EUI, now + timedelta(days=1), 14),
    ]
    real = [
        _cs(APP_CS, APP_CS, CS_EUI, now - timedelta(seconds=10), 20),
        _tts("city-parking", "park-2", "ttn", now - timedelta(seconds=5), 21),
    ]
    service = run_ingest(clean_db, broker_url, mqtt_topics=["v3/+/devices/+/up", "application/#"])
    publish_all(broker_url, forged + real)
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM dead_letters") == len(forged))
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM parking_events") == len(real))
    time.sleep(0.5)
    service.stop()
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == len(real)  # forged ones take no dedup key
    assert scalar(clean_db, "SELECT count(*) FROM parking_events") == len(real)
    with psycopg.connect(clean_db) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM dead_letters WHERE stage = 'source'").fetchall()]
    assert len(reasons) == len(forged)
    text = "\n".join(reasons)
    assert "topic names device 'ffffffffffffffff', the message's DevEUI is '0101010101010101'" in text
    assert f"topic names application 'attacker-app', the message '{APP_CS}'" in text
    assert "application 'attacker-app' is not the device's registered 'city-parking'" in text
    assert f"application 'attacker-app' is not the device's registered '{APP_CS}'" in text
    assert "tenant 'evil' is not the device's registered 'ttn'" in text
    assert "time ahead of the hub's clock" in text
    counted = {
        s.labels["reason"]: s.value
        for m in service.metrics.registry.collect()
        for s in m.samples
        if s.name.endswith("dead_letters_total") and s.labels.get("stage") == "source"
    }
    assert counted == {
        "topic and message disagree": 2,
        "not the registered source": 3,
        "time ahead of the hub's clock": 1,
    }


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("v3/city-parking@ttn/devices/park-2/up", ("city-parking", "ttn", "park-2")),
        ("v3/city-parking/devices/park-2/up", ("city-parking", None, "park-2")),
        (f"application/{APP_CS}/device/0101010101010101/event/up", (APP_CS, None, "0101010101010101")),
        ("application/7/device/0101010101010101/rx", ("7", None, "0101010101010101")),
        ("custom/layout/of/a/network/server", None),
    ],
)
def test_topic_layouts(topic: str, expected: tuple[str, str | None, str] | None) -> None:
    assert topic_ids(topic) == expected


OTHER_EUI = "0303030303030303"  # registered without an application: only the source's list refuses its forgeries
FLEET_LIMITED = (
    FLEET.replace("devices:\n", "  - {site_id: space-3, kind: space, parent_id: lot-1}\ndevices:\n")
    + f'  - {{dev_eui: "{OTHER_EUI}", codec: nwave/nps405, site_id: space-3}}\n'
)


def test_a_source_limited_to_its_applications_dead_letters_the_others_and_stores_its_own(
    clean_db: str, broker_url: str, tmp_path: Path
) -> None:
    register(clean_db, FLEET_LIMITED)
    now = datetime.now(UTC)

    def cs(app: str, eui: str, seconds: int, f_cnt: int) -> tuple[str, bytes]:
        body = chirpstack_uplink(
            dev_eui=eui,
            application_id=app,
            time=now - timedelta(seconds=seconds),
            f_port=1,
            payload=OCCUPIED,
            f_cnt=f_cnt,
        )
        return chirpstack_topic(app, eui), orjson.dumps(body)

    # topic and body agree and the device has no registered application: only the source's list tells them apart
    forged = [cs("attacker-app", OTHER_EUI, 40, 30), cs("another-app", OTHER_EUI, 35, 31)]
    real = [cs(APP_CS, OTHER_EUI, 20, 32), cs(APP_CS, CS_EUI, 10, 33)]
    source = MqttBrokerSource(name="kreis-cs", url=broker_url, topics=["application/#"], applications=[APP_CS])
    settings = ingest_settings(clean_db, broker_url, tmp_path)
    service = IngestService(settings, database_url=clean_db, sources=[source])
    service.start()
    try:
        assert service.source.connected.wait(10)
        publish_all(broker_url, forged + real)
        wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM dead_letters") == len(forged))
        wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM parking_events") == len(real))
        time.sleep(0.5)
    finally:
        service.stop()
        drop_session(broker_url, service.source.config.client_id)
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == len(real)
    with psycopg.connect(clean_db) as conn:
        rows = conn.execute("SELECT stage, reason, dev_eui FROM dead_letters ORDER BY reason").fetchall()
    assert [(stage, eui) for stage, _, eui in rows] == [("source", OTHER_EUI)] * 2
    assert rows[0][1] == f"application not allowed for the source: 'another-app' is not one of 'kreis-cs''s {APP_CS}"
    assert "'attacker-app' is not one of 'kreis-cs''s" in rows[1][1]
    counted = {
        s.labels["reason"]: s.value
        for m in service.metrics.registry.collect()
        for s in m.samples
        if s.name.endswith("dead_letters_total") and s.labels.get("stage") == "source"
    }
    assert counted == {"application not allowed for the source": 2}
