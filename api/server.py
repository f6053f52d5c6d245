"""Serving the API with uvicorn, hardened against slow clients: a deadline for the request headers (uvicorn has
none of its own: a client sending a header byte a minute would hold its connection forever), the body deadline
of :class:`stadtpuls.api.edge.BodyTimeoutMiddleware`, a keep-alive timeout, and a cap on connections and requests
at once (uvicorn's ``limit_concurrency``: 503 beyond). With ``api_metrics_port`` the same app also listens on
that port, the only one where ``/metrics`` answers.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from stadtpuls.settings import Settings

__all__ = ["HeaderTimeoutProtocol", "serve", "server_config"]

DEFAULT_HEADER_TIMEOUT_S = 10.0


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers: from the connection's start, and from
    the end of the previous response on a kept-alive connection. A client that misses it is disconnected."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout: float = getattr(config, "header_timeout", DEFAULT_HEADER_TIMEOUT_S)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("request headers not received in time; connection closed")
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a request's headers are complete
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._disarm()
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_config(settings: Settings, app: Any, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration of ``app`` from the settings (``options`` as for :class:`uvicorn.Config`)."""
    config = uvicorn.Config(
        app,
        http=HeaderTimeoutProtocol,
        timeout_keep_alive=max(1, round(settings.api_keepalive_timeout)),
        limit_concurrency=settings.api_max_concurrency,
        proxy_headers=False,  # the app reads X-Forwarded-For itself, from STADTPULS_TRUSTED_PROXIES only
        server_header=False,
        **options,
    )
    config.header_timeout = settings.api_header_timeout  # type: ignore[attr-defined]  # read by the protocol
    return config


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, app: Any, *, host: str, port: int, **options: Any) -> None:
    """Serve ``app`` on ``host:port`` (and on ``api_metrics_port``, when set) until interrupted."""
    config = server_config(settings, app, **options)
    sockets = [_listen(host, port)]
    if settings.api_metrics_port:
        sockets.append(_listen(host, settings.api_metrics_port))
    server = uvicorn.Server(config)
    if config.workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=sockets).run()
    else:
        server.run(sockets=sockets)
