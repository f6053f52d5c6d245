"""Helpers of the alert tests: a planter that writes devices, their state and readings with set-based SQL at
chosen (simulated) times; a webhook receiver and an SMTP server, both real local servers."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row


class Planter:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self._n = 0

    def device(self, *, interval_s: int = 3600, site_id: str | None = None, codec: str = "dragino/ldds75") -> str:
        self._n += 1
        dev = f"{0xB000000000000000 + self._n:016x}"
        self.conn.execute(
            "INSERT INTO devices (dev_eui, codec, site_id, report_interval_s) VALUES (%s, %s, %s, %s)",
            (dev, codec, site_id, interval_s),
        )
        return dev

    def bin(self, site_id: str, threshold_pct: float | None = 80) -> str:
        self.conn.execute(
            "INSERT INTO sites (site_id, kind, depth_mm, full_mm, threshold_pct) VALUES (%s, 'bin', 1500, 200, %s)",
            (site_id, threshold_pct),
        )
        return self.device(site_id=site_id)

    def state(self, dev: str, last_time: datetime, *, last_join: datetime | None = None) -> None:
        self.conn.execute(
            "INSERT INTO device_state (dev_eui, last_time, last_join) VALUES (%s, %s, %s) ON CONFLICT (dev_eui) "
            "DO UPDATE SET last_time = EXCLUDED.last_time, last_join = EXCLUDED.last_join, updated_at = now()",
            (dev, last_time, last_join),
        )

    def touch(self, dev: str) -> None:
        """What the writer does in every batch: the device's state row marked updated (the alerts service's day
        summaries follow the devices touched since their last refresh)."""
        self.conn.execute(
            "INSERT INTO device_state (dev_eui) VALUES (%s) ON CONFLICT (dev_eui) DO UPDATE SET updated_at = now()",
            (dev,),
        )

    def bin_levels(self, dev: str, start: datetime, end: datetime, *, fill: str, battery_v: str = "3.6") -> None:
        """Hourly bin readings from ``start`` to ``end`` (inclusive); ``fill`` and ``battery_v`` are SQL
        expressions of ``h`` (hours since ``start``)."""
        self.conn.execute(
            f"""INSERT INTO bin_levels (time, dev_eui, site_id, fill_pct, battery_v)
                SELECT %(start)s + make_interval(hours => h), %(dev)s, d.site_id, {fill}, {battery_v}
                FROM generate_series(0, (extract(epoch FROM %(end)s - %(start)s) / 3600)::int) h,
                     devices d WHERE d.dev_eui = %(dev)s""",
            {"start": start, "end": end, "dev": dev},
        )
        self.touch(dev)

    def uplinks(self, dev: str, start: datetime, end: datetime, *, rssi: str = "-90", sf: str = "7") -> None:
        """Hourly uplinks, counter = hour; ``rssi`` and ``sf`` are SQL expressions of ``h``."""
        self.conn.execute(
            f"""INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, f_port, rssi, snr, sf, lns, received_at)
                SELECT t, dedup_key_of(gen_random_uuid()), %(dev)s, h, 2, {rssi}, 8, {sf}, 'tts', t + interval '2 s'
                FROM generate_series(0, (extract(epoch FROM %(end)s - %(start)s) / 3600)::int) h,
                     LATERAL (SELECT %(start)s + make_interval(hours => h) AS t) x""",
            {"start": start, "end": end, "dev": dev},
        )
        self.touch(dev)

    def alerts(self) -> list[dict[str, Any]]:
        cur = self.conn.cursor(row_factory=dict_row)
        return cur.execute("SELECT * FROM alerts ORDER BY alert_id").fetchall()


class WebhookReceiver:
    """A real HTTP server on a free local port: checks each POST's signature, answers ``fail`` first requests with
    500, and keeps the accepted bodies. It counts in ``repeats`` the deliveries whose id (``X-Stadtpuls-Delivery``)
    it has accepted before; with ``drop_repeats`` it drops them, answering them as accepted, as the README asks of a
    receiver of a sender that may be killed between a delivery and its commit."""

    def __init__(self, secret: str, *, fail: int = 0, drop_repeats: bool = False) -> None:
        self.secret = secret
        self.fail = fail
        self.accepted: list[dict[str, Any]] = []
        self.refused = 0
        self.bad_signatures = 0
        self.delivered: set[str] = set()
        self.repeats = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                with receiver.lock:
                    if not hmac.compare_digest(self.headers.get("X-Stadtpuls-Signature", ""), expected):
                        receiver.bad_signatures += 1
                        status = 401
                    elif receiver.fail > 0:
                        receiver.fail -= 1
                        receiver.refused += 1
                        status = 500
                    else:
                        delivery = self.headers.get("X-Stadtpuls-Delivery", "")
                        repeat = delivery in receiver.delivered
                        receiver.repeats += repeat
                        receiver.delivered.add(delivery)
                        if not (repeat and drop_repeats):
                            receiver.accepted.append(json.loads(body))
                        status = 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def changes(self) -> list[tuple[int, str]]:
        with self.lock:
            return [(b["alert"]["alert_id"], b["change"]) for b in self.accepted if "alert" in b]

    def digests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [b["digest"] for b in self.accepted if "digest" in b]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def add_channel(conn: psycopg.Connection, channel_id: str, kind: str, target: str, **fields: Any) -> None:
    cols = {"channel_id": channel_id, "kind": kind, "target": target, **fields}
    conn.execute(
        f"INSERT INTO notification_channels ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
        list(cols.values()),
    )


class SmtpServer:
    """aiosmtpd on a free port: STARTTLS required, login required, with a password the test can change."""

    def __init__(self, tmp: Path) -> None:
        import ssl

        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.cert, key = tmp / "cert.pem", tmp / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(self.cert),
             "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.password = "right"
        self.messages: list[Any] = []
        server = self

        class Handler:
            async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                server.messages.append(envelope)
                return "250 OK"

        def authenticate(smtp: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            wanted = (b"alerts", server.password.encode())
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == wanted
            return AuthResult(success=ok, handled=False)

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=authenticate,
            auth_required=True,
        )
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
