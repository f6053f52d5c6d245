"""Server-sent event streams over the live hub's topics: the current body on connect, then every change, and a
``ping`` event every 15 seconds so proxies and browsers keep the connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import StreamingResponse

if TYPE_CHECKING:
    from .deps import AppContext

__all__ = ["PING_S", "event_stream", "format_event"]

PING_S = 15.0
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def format_event(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


async def _events(ctx: AppContext, request: Request, names: list[str]) -> AsyncIterator[bytes]:
    hub = ctx.hub
    queues = {name: hub.topics[name].subscribe() for name in names}
    waiters: dict[str, asyncio.Task[bytes]] = {}
    ctx.metrics.sse_clients.inc()
    try:
        yield b"retry: 3000\n\n"
        sent: dict[str, bytes] = {}  # a change that lands between subscribing and the first body is not sent twice
        for name in names:
            sent[name], _ = await hub.get(name)
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


def event_stream(ctx: AppContext, request: Request, names: list[str]) -> StreamingResponse:
    return StreamingResponse(_events(ctx, request, names), media_type="text/event-stream", headers=HEADERS)
