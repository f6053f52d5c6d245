"""A TTS Storage Integration of our own for the tests: the documented uplink endpoint over real HTTP.

``GET /api/v3/as/applications/{application_id}/packages/storage/uplink_message`` with a bearer key, ``after`` /
``before`` (RFC 3339, exclusive), ``limit`` and ``order`` (``received_at`` or ``-received_at``); the body is one
``{"result": <ApplicationUp>}`` per line, written and flushed line by line. Faults are queued per request:
``Fault("status", status=429, retry_after="1")``, ``Fault("cut", lines=5)`` (the connection closes after five
lines, mid-body), ``Fault("slow", delay=0.2)`` (a pause before every line), ``Fault("error_line", lines=3)`` (an
``{"error": ...}`` line after three results, as TTS ends a failed stream). Every request is recorded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

PATH = "/api/v3/as/applications/{}/packages/storage/uplink_message"


@dataclass
class Fault:
    kind: str  # status | cut | slow | error_line
    status: int = 500
    retry_after: str | None = None
    lines: int = 0
    delay: float = 0.0


@dataclass
class Request:
    at: float  # time.monotonic()
    params: dict[str, str]
    status: int
    lines: int = 0


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class StorageServer:
    def __init__(self, application_id: str, api_key: str, uplinks: list[dict[str, Any]] | None = None) -> None:
        self.application_id = application_id
        self.api_key = api_key
        self.uplinks: list[dict[str, Any]] = list(uplinks or [])
        self.faults: deque[Fault] = deque()
        self.after_inclusive = False  # answer uplinks received at ``after`` itself too
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        storage = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                storage.answer(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _error(self, h: BaseHTTPRequestHandler, req: Request, status: int, message: str, **headers: str) -> None:
        req.status = status
        body = orjson.dumps({"code": status, "message": message})
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        req = Request(time.monotonic(), params, 200)
        with self._lock:
            self.requests.append(req)
            fault = self.faults.popleft() if self.faults else None
        if parts.path != PATH.format(self.application_id):
            return self._error(h, req, 404, "application not found")
        if h.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(h, req, 401, "error:pkg/auth:token_invalid (invalid token)")
        if fault is not None and fault.kind == "status":
            extra = {"Retry_After": fault.retry_after} if fault.retry_after else {}
            return self._error(h, req, fault.status, "fault injected", **extra)
        order = params.get("order", "received_at")
        if order not in ("received_at", "-received_at"):
            return self._error(h, req, 400, "invalid order")
        rows = sorted(self.uplinks, key=lambda u: _time(u["received_at"]), reverse=order.startswith("-"))
        if "after" in params:
            after = _time(params["after"])
            rows = [
                u
                for u in rows
                if _time(u["received_at"]) > after or (self.after_inclusive and _time(u["received_at"]) == after)
            ]
        if "before" in params:
            before = _time(params["before"])
            rows = [u for u in rows if _time(u["received_at"]) < before]
        rows = rows[: int(params.get("limit", "1000"))]
        lines = [orjson.dumps({"result": u}) + b"\n" for u in rows]
        body_size = sum(len(line) for line in lines)
        if fault is not None and fault.kind == "error_line":
            lines = lines[: fault.lines] + [orjson.dumps({"error": {"code": 14, "message": "unavailable"}}) + b"\n"]
            body_size = sum(len(line) for line in lines)
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Content-Length", str(body_size))
        h.end_headers()
        for k, line in enumerate(lines):
            if fault is not None and fault.kind == "cut" and k >= fault.lines:
                h.wfile.write(line[: len(line) // 2])  # half a line, then the connection is gone
                h.wfile.flush()
                h.close_connection = True
                h.connection.close()
                return
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            h.wfile.write(line)
            h.wfile.flush()
            req.lines += 1
