"""ASGI middleware: request body size limit, CORS split by route family, request metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import ApiMetrics
from .problems import problem_response

__all__ = [
    "BodyLimitMiddleware",
    "MetricsMiddleware",
    "PUBLIC_PREFIXES",
    "Refusal",
    "SplitCORSMiddleware",
    "call_refusing",
]

#: Paths served to anyone (citizen pages, map clients, open-data feeds); everything else under /api is an operator
#: route.
PUBLIC_PREFIXES = ("/api/v1/parking", "/api/v1/buses", "/api/public/", "/sta/", "/ngsi-ld/", "/health")


class Refusal(Exception):
    """Raised by a wrapped ``receive`` (a body too large, too late, or a route without a valid key): the request is
    answered with ``response`` instead of whatever the app makes of the unread body (see :func:`call_refusing`)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def call_refusing(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app`` with a ``receive`` that may raise :class:`Refusal`; then the refusal's response goes out, also
    when the app caught the error as a body it could not read and answered it itself."""
    refusal: Refusal | None = None
    started = False

    async def watched_receive() -> Message:
        nonlocal refusal
        try:
            return await receive()
        except Refusal as r:
            refusal = r
            raise

    async def answer() -> None:
        nonlocal started
        if not started and refusal is not None:
            started = True
            await refusal.response(scope, receive, send)

    async def guarded_send(message: Message) -> None:
        nonlocal started
        if refusal is not None:
            await answer()
            return
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, watched_receive, guarded_send)
    except Refusal:
        await answer()


class BodyLimitMiddleware:
    """Answers 413 (problem+json) when a request body exceeds ``max_bytes``, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._response(scope)(scope, receive, send)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise Refusal(self._response(scope))
            return message

        await call_refusing(self.app, scope, limited_receive, send)

    def _response(self, scope: Scope) -> Response:
        return problem_response(413, f"request body larger than {self.max_bytes} bytes", instance=scope.get("path", ""))


class SplitCORSMiddleware:
    """CORS for public routes from ``public_origins``, for operator routes from ``operator_origins``; an empty
    list means no CORS headers at all (browsers on other origins are refused)."""

    def __init__(self, app: ASGIApp, public_origins: Sequence[str], operator_origins: Sequence[str]) -> None:
        self.app = app
        self.public = (
            CORSMiddleware(
                app, allow_origins=list(public_origins), allow_methods=["GET", "HEAD", "OPTIONS"], max_age=600
            )
            if public_origins
            else None
        )
        self.operator = (
            CORSMiddleware(
                app,
                allow_origins=list(operator_origins),
                allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=["X-API-Key", "Content-Type"],
                max_age=600,
            )
            if operator_origins
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope.get("path", "")
            chosen = self.public if path.startswith(PUBLIC_PREFIXES) else self.operator
            if chosen is not None:
                await chosen(scope, receive, send)
                return
        await self.app(scope, receive, send)


class MetricsMiddleware:
    """Counts requests and observes latency per method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope.get("method", ""), template, status, time.perf_counter() - t0)
