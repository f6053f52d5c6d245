from __future__ import annotations

from datetime import timedelta

from apitest import OP, ApiClient, Seeder, now


def test_dead_letters_filtered_by_stage_device_and_time(client: ApiClient, seed: Seeder) -> None:
    t = now()
    seed.dead_letter("envelope", "not JSON", received_at=t - timedelta(hours=3), payload=b"\xff{garbage")
    seed.dead_letter("device", "unknown device", received_at=t - timedelta(hours=2), dev_eui="00000000000000aa")
    seed.dead_letter("codec", "payload length 3 not 11", received_at=t - timedelta(hours=1))
    r = client.get("/api/v1/dead-letters", headers=OP)
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 3 and [d["stage"] for d in body["data"]] == ["codec", "device", "envelope"]
    env = body["data"][2]
    assert env["reason"] == "not JSON" and env["payload_bytes"] == 9 and env["payload_preview"].endswith("{garbage")
    assert env["repeats"] == 1 and env["last_received_at"] is None
    assert client.get("/api/v1/dead-letters", headers=OP, params={"stage": "device"}).json()["count"] == 1
    assert (
        client.get("/api/v1/dead-letters", headers=OP, params={"dev_eui": "00000000000000AA"}).json()["data"][0][
            "reason"
        ]
        == "unknown device"
    )
    window = {"start": (t - timedelta(hours=2, minutes=30)).isoformat(), "end": (t - timedelta(minutes=30)).isoformat()}
    assert client.get("/api/v1/dead-letters", headers=OP, params=window).json()["count"] == 2
    page = client.get("/api/v1/dead-letters", headers=OP, params={"limit": 1, "offset": 1}).json()
    assert page["count"] == 3 and page["data"][0]["stage"] == "device"
    inverted = {"start": t.isoformat(), "end": (t - timedelta(hours=1)).isoformat()}
    assert client.get("/api/v1/dead-letters", headers=OP, params=inverted).status_code == 422
    assert client.get("/api/v1/dead-letters", headers=OP, params={"dev_eui": "zz"}).status_code == 422
