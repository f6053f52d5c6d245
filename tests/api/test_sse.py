from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from stadtpuls.api import sse as api_sse
from stadtpuls.api.live import LiveHub
from stadtpuls.api.metrics import ApiMetrics


class Request:
    async def is_disconnected(self) -> bool:
        return False


def test_stream_sends_each_body_once_and_only_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_sse, "PING_S", 0.05)
    values = iter([{"n": 1}, {"n": 1}, {"n": 2}])

    async def compute(pool: Any) -> Any:
        return next(values)

    async def run() -> list[bytes]:
        hub = LiveHub(None, "", poll_interval=60)  # type: ignore[arg-type]
        topic = hub.add("lots", compute, ttl=60)
        ctx = SimpleNamespace(hub=hub, metrics=ApiMetrics())
        stream = api_sse._events(ctx, Request(), ["lots"])  # type: ignore[arg-type]
        out = [await stream.__anext__(), await stream.__anext__()]  # retry, then the body computed on connect
        out.append(await stream.__anext__())  # the subscriber's copy of that first body is not sent again: a ping
        topic.invalidate()
        await topic.refresh(None)  # type: ignore[arg-type]  # same body: nothing to send
        out.append(await stream.__anext__())
        topic.invalidate()
        await topic.refresh(None)  # type: ignore[arg-type]  # a change
        out.append(await stream.__anext__())
        await stream.aclose()
        assert not topic.subscribers and ctx.metrics.sse_clients._value.get() == 0
        return out

    events = asyncio.run(run())
    assert events == [
        b"retry: 3000\n\n",
        b'event: lots\ndata: {"n":1}\n\n',
        b"event: ping\ndata: {}\n\n",
        b"event: ping\ndata: {}\n\n",
        b'event: lots\ndata: {"n":2}\n\n',
    ]
