"""The sender: delivers the notification outbox, one row at a time.

A due row (``pending``, ``next_attempt_at`` passed) is locked (``FOR UPDATE SKIP LOCKED``, so two senders never
take the same one), delivered, and marked ``sent`` in the same transaction; a failed delivery counts an attempt
and waits ``retry_base_s * 2**(attempts - 1)``; after ``max_attempts`` the row is ``dead``, listed for the
operator, who can resend it. A row's id travels with it (``X-Stadtpuls-Delivery``, the mail's Message-ID) so a
receiver can drop the one repeat a crash between delivery and commit could cause.

Channels:

* ``webhook``: HTTP POST of a JSON body, ``X-Stadtpuls-Signature: sha256=<hex>``, the HMAC-SHA256 of the body
  with the channel's secret; any 2xx is delivered.
* ``email``: plain text in the town's language over SMTP: ``smtp://`` (STARTTLS, required), ``smtps://`` (TLS
  from the start) or ``smtp+plain://`` (no TLS: a relay on the same host only); login when the URL has a user.

Quiet hours (local time) hold back all but critical notifications until they end; no attempt is counted. A
daily digest (:mod:`.digest`, a row with ``digest`` instead of an event) is delivered the same way, never held.

Exceptions::

    DeliveryError       a delivery failed (attributes: channel_id, reason)
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import orjson
import psycopg
from psycopg.rows import dict_row

from stadtpuls.logs import get_logger

from .digest import Digest, digest_mail, digest_payload

__all__ = ["DeliveryError", "SendStats", "Sender", "SenderConfig", "quiet_until", "signature"]

log = get_logger("stadtpuls.alerts.notify")

_DUE = """
SELECT n.notification_id, n.attempts, n.digest, c.channel_id, c.kind AS channel_kind, c.target, c.secret,
       c.quiet_from, c.quiet_to, e.state AS change, e.time AS changed_at, e.actor, e.note, a.alert_id, a.rule_id,
       r.kind, a.subject, a.dev_eui, a.site_id, a.severity, a.state, a.value, a.message, a.opened_at, a.resolved_at
FROM notifications n
JOIN notification_channels c ON c.channel_id = n.channel_id
LEFT JOIN alert_events e ON e.event_id = n.event_id
LEFT JOIN alerts a ON a.alert_id = e.alert_id
LEFT JOIN alert_rules r ON r.rule_id = a.rule_id
WHERE n.status = 'pending' AND n.next_attempt_at <= %(now)s
ORDER BY n.next_attempt_at, n.notification_id
LIMIT 1
FOR UPDATE OF n SKIP LOCKED
"""
_SENT = "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = %s WHERE notification_id = %s"
_FAILED = """
UPDATE notifications SET attempts = attempts + 1, last_error = %(error)s, next_attempt_at = %(next)s,
    status = CASE WHEN attempts + 1 >= %(max_attempts)s THEN 'dead' ELSE 'pending' END
WHERE notification_id = %(id)s
"""
_HOLD = "UPDATE notifications SET next_attempt_at = %s WHERE notification_id = %s"

_TEXT = {
    "de": {
        "open": "Neuer Alarm",
        "acknowledged": "Alarm bestätigt",
        "resolved": "Alarm behoben",
        "rule": "Regel",
        "subject": "Betrifft",
        "site": "Standort",
        "severity": "Schwere",
        "since": "Seit",
        "note": "Notiz",
        "link": "Im Betriebsportal öffnen",
    },
    "en": {
        "open": "New alert",
        "acknowledged": "Alert acknowledged",
        "resolved": "Alert resolved",
        "rule": "Rule",
        "subject": "Subject",
        "site": "Site",
        "severity": "Severity",
        "since": "Since",
        "note": "Note",
        "link": "Open in the operator page",
    },
}
LANGUAGES = tuple(_TEXT)


class DeliveryError(Exception):
    def __init__(self, channel_id: str, reason: str) -> None:
        super().__init__(f"channel {channel_id}: {reason}")
        self.channel_id = channel_id
        self.reason = reason


@dataclass(frozen=True)
class SenderConfig:
    public_url: str  # base of the links to the operator page
    timezone: str = "UTC"
    language: str = "en"
    smtp_url: str | None = None
    smtp_from: str = "stadtpuls@localhost"
    smtp_ca_file: Path | None = None
    timeout_s: float = 10.0
    retry_base_s: float = 30.0
    max_attempts: int = 6


@dataclass
class SendStats:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0
    errors: list[str] = field(default_factory=list)


def signature(secret: str, body: bytes) -> str:
    """The ``X-Stadtpuls-Signature`` value of a webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def quiet_until(now: datetime, quiet_from: int | None, quiet_to: int | None, tz: str) -> datetime | None:
    """The end of the quiet hours ``[quiet_from, quiet_to)`` (local hours, may span midnight) when ``now`` lies in
    them, else None."""
    if quiet_from is None or quiet_to is None or quiet_from == quiet_to:
        return None
    local = now.astimezone(ZoneInfo(tz))
    h = local.hour
    inside = quiet_from <= h < quiet_to if quiet_from < quiet_to else (h >= quiet_from or h < quiet_to)
    if not inside:
        return None
    end = local.replace(hour=quiet_to, minute=0, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end


class Sender:
    def __init__(self, config: SenderConfig) -> None:
        self.config = config
        self._http = httpx.Client(timeout=config.timeout_s, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def send_due(self, conn: psycopg.Connection, *, now: datetime, limit: int = 1000) -> SendStats:
        """Deliver up to ``limit`` due notifications, each in its own transaction."""
        stats = SendStats()
        for _ in range(limit):
            with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(_DUE, {"now": now}).fetchone()
                if row is None:
                    break
                nid = row["notification_id"]
                hold = quiet_until(now, row["quiet_from"], row["quiet_to"], self.config.timezone)
                if hold is not None and row["digest"] is None and row["severity"] != "critical":
                    cur.execute(_HOLD, (hold, nid))
                    stats.held += 1
                    continue
                try:
                    self.deliver(row)
                except DeliveryError as e:
                    attempts = row["attempts"] + 1
                    wait = self.config.retry_base_s * 2 ** (attempts - 1)
                    params = {"error": e.reason, "next": now + timedelta(seconds=wait), "id": nid}
                    cur.execute(_FAILED, {**params, "max_attempts": self.config.max_attempts})
                    dead = attempts >= self.config.max_attempts
                    stats.dead += dead
                    stats.failed += 1
                    stats.errors.append(str(e))
                    log.warning(
                        "notification failed",
                        extra={"notification": nid, "error": str(e), "attempts": attempts, "dead": dead},
                    )
                    continue
                cur.execute(_SENT, (now, nid))
                stats.sent += 1
        return stats

    # -- delivery ------------------------------------------------------------------------------------------------
    def alerts_page(self) -> str:
        return f"{self.config.public_url.rstrip('/')}/operator/alerts"

    def link(self, alert_id: int) -> str:
        return f"{self.alerts_page()}#alert-{alert_id}"

    def deliver(self, row: dict[str, Any]) -> None:
        if row["channel_kind"] == "webhook":
            self._webhook(row)
        else:
            self._email(row)

    def _webhook(self, row: dict[str, Any]) -> None:
        if row["digest"] is not None:
            digest = Digest.from_json(row["digest"])
            doc = digest_payload(
                digest, delivery=row["notification_id"], link=self.link, alerts_page=self.alerts_page()
            )
        else:
            doc = payload(row, self.link(row["alert_id"]))
        body = orjson.dumps(doc)
        headers = {
            "Content-Type": "application/json",
            "X-Stadtpuls-Signature": signature(row["secret"] or "", body),
            "X-Stadtpuls-Delivery": str(row["notification_id"]),
        }
        try:
            response = self._http.post(row["target"], content=body, headers=headers)
        except httpx.HTTPError as e:
            raise DeliveryError(row["channel_id"], f"POST {row['target']}: {type(e).__name__}: {e}") from None
        if not response.is_success:
            raise DeliveryError(row["channel_id"], f"POST {row['target']}: HTTP {response.status_code}")

    def _email(self, row: dict[str, Any]) -> None:
        if not self.config.smtp_url:
            raise DeliveryError(row["channel_id"], "STADTPULS_SMTP_URL is not set")
        msg = self.mail(row)
        url = urlsplit(self.config.smtp_url)
        host, cid = url.hostname or "localhost", row["channel_id"]
        context = ssl.create_default_context(cafile=str(self.config.smtp_ca_file) if self.config.smtp_ca_file else None)
        try:
            smtp: smtplib.SMTP
            if url.scheme == "smtps":
                smtp = smtplib.SMTP_SSL(host, url.port or 465, timeout=self.config.timeout_s, context=context)
            else:
                smtp = smtplib.SMTP(host, url.port or (25 if url.scheme == "smtp+plain" else 587),
                                    timeout=self.config.timeout_s)  # fmt: skip
            with smtp:
                if url.scheme == "smtp":
                    smtp.starttls(context=context)
                if url.username:
                    smtp.login(unquote(url.username), unquote(url.password or ""))
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(cid, f"SMTP login to {host} refused: {e.smtp_code} {_text(e.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as e:
            raise DeliveryError(cid, f"SMTP server {host} does not offer {e}") from None
        except smtplib.SMTPResponseException as e:
            raise DeliveryError(cid, f"SMTP {host}: {e.smtp_code} {_text(e.smtp_error)}") from None
        except (smtplib.SMTPException, OSError) as e:
            raise DeliveryError(cid, f"SMTP {host}: {type(e).__name__}: {e}") from None

    def mail(self, row: dict[str, Any]) -> EmailMessage:
        if row["digest"] is not None:
            c = self.config
            digest = Digest.from_json(row["digest"])
            msg = digest_mail(
                digest,
                language=c.language,
                timezone=c.timezone,
                link=self.link,
                alerts_page=self.alerts_page(),
                sender=c.smtp_from,
                to=row["target"],
            )
            msg["Message-ID"] = make_msgid(f"stadtpuls-{row['notification_id']}")
            return msg
        t = _TEXT.get(self.config.language, _TEXT["en"])
        msg = EmailMessage()
        msg["From"] = self.config.smtp_from
        msg["To"] = row["target"]
        msg["Subject"] = f"[stadtpuls] {t[row['change']]}: {row['rule_id']} {row['subject']} ({row['severity']})"
        msg["Message-ID"] = make_msgid(f"stadtpuls-{row['notification_id']}")
        local = row["opened_at"].astimezone(ZoneInfo(self.config.timezone)).strftime("%Y-%m-%d %H:%M %Z")
        lines = [
            f"{t[row['change']]}: {row['message']}",
            "",
            f"{t['rule']}: {row['rule_id']} ({row['kind']})",
            f"{t['subject']}: {row['subject']}",
        ]
        lines += [f"{t['site']}: {row['site_id']}"] if row["site_id"] else []
        lines += [f"{t['severity']}: {row['severity']}", f"{t['since']}: {local}"]
        lines += [f"{t['note']}: {row['note']}"] if row["note"] else []
        lines += ["", f"{t['link']}: {self.link(row['alert_id'])}"]
        msg.set_content("\n".join(lines) + "\n")
        return msg


def payload(row: dict[str, Any], link: str) -> dict[str, Any]:
    """The webhook body: the change and the alert as it is now."""
    alert = {
        k: row[k]
        for k in ("alert_id", "rule_id", "kind", "subject", "dev_eui", "site_id", "severity", "state", "value")
    }
    alert.update(message=row["message"], opened_at=row["opened_at"], resolved_at=row["resolved_at"])
    return {
        "delivery": row["notification_id"],
        "change": row["change"],
        "time": row["changed_at"],
        "actor": row["actor"],
        "note": row["note"],
        "alert": alert,
        "link": link,
    }


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
