"""Server-sent event streams over the live hub's topics: the current body on connect, then every change, and a
``ping`` event every 15 seconds so proxies and browsers keep the connection. A town's stream sends the town's share
of each body (:mod:`.towns`), and only when that share changed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .towns import town_body

if TYPE_CHECKING:
    from .deps import AppContext

__all__ = ["PING_S", "StreamSlots", "event_stream", "format_event"]

PING_S = 15.0
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StreamSlots:
    """Open streams, in all and per client address: ``take`` refuses beyond ``total`` (503) or ``per_client``
    (429); a taken slot is given back when its stream ends, however it ends."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self.open = 0
        self._by_client: dict[str, int] = {}

    def take(self, client: str) -> None:
        from .problems import Problem

        if self._by_client.get(client, 0) >= self.per_client:
            raise Problem(
                429,
                f"at most {self.per_client} live streams per client are open at once",
                headers={"Retry-After": "30"},
            )
        if self.open >= self.total:
            raise Problem(503, "the live streams are full; try again shortly", headers={"Retry-After": "30"})
        self.open += 1
        self._by_client[client] = self._by_client.get(client, 0) + 1

    def give(self, client: str) -> None:
        self.open -= 1
        left = self._by_client[client] - 1
        if left:
            self._by_client[client] = left
        else:
            del self._by_client[client]


class _SlotStream(StreamingResponse):
    """A stream that gives its slot back when the response ends (also when the body never started)."""

    def __init__(self, body: AsyncIterator[bytes], slots: StreamSlots, client: str) -> None:
        super().__init__(body, media_type="text/event-stream", headers=HEADERS)
        self._slots, self._client = slots, client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give(self._client)


def format_event(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


async def _events(ctx: AppContext, request: Request, names: list[str], town: str | None = None) -> AsyncIterator[bytes]:
    hub = ctx.hub
    queues = {name: hub.topics[name].subscribe() for name in names}
    waiters: dict[str, asyncio.Task[bytes]] = {}
    ctx.metrics.sse_clients.inc()
    try:
        yield b"retry: 3000\n\n"
        sent: dict[str, bytes] = {}  # a change that lands between subscribing and the first body is not sent twice
        for name in names:
            sent[name], _ = await town_body(hub, name, town)
            yield format_event(name, sent[name])
        while not await request.is_disconnected():
            for name, q in queues.items():
                if name not in waiters:
                    waiters[name] = asyncio.ensure_future(q.get())
            done, _ = await asyncio.wait(waiters.values(), timeout=PING_S, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                yield b"event: ping\ndata: {}\n\n"
                continue
            for name in list(waiters):
                if waiters[name].done():
                    body = waiters.pop(name).result()
                    if town is not None:  # the hub changed: what the town sees may not have
                        body, _ = await town_body(hub, name, town)
                    if body != sent[name]:
                        sent[name] = body
                        yield format_event(name, body)
    finally:
        ctx.metrics.sse_clients.dec()
        for task in waiters.values():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for name, q in queues.items():
            hub.topics[name].unsubscribe(q)


def event_stream(ctx: AppContext, request: Request, names: list[str], town: str | None = None) -> StreamingResponse:
    """The stream of ``names`` (with ``town``, that town's share of each: :mod:`.towns`), within the caps of
    ``ctx.streams`` (429 per client, 503 in all)."""
    from .deps import client_address

    client = client_address(request.scope)
    ctx.streams.take(client)
    return _SlotStream(_events(ctx, request, names, town), ctx.streams, client)
