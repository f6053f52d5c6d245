"""The daily digest: once a day, at a channel's ``digest_hour`` in the town's time zone, one message summarising
the day, sent through the notification outbox like a state change.

1. :func:`queue_digests` (every round, after the evaluation): for each enabled channel with a digest hour, the
   newest digest instant at or before ``now`` (today's hour, else yesterday's); if the channel has no row for that
   local day yet, the summary is computed *as of that instant* and queued (``notifications.digest_day``,
   ``notifications.digest``, migration 0020). The unique key (channel, day) makes a second round, a second
   service or a restart queue nothing more; a service that was down at the digest hour sends that day's digest
   when it is back (only the newest missed day's).
2. The sender delivers the row like any other (retries, dead letters, resend); quiet hours do not hold a digest
   back (its hour is chosen). The text is the one stored at queueing, so a retry or a resend says the same.

A summary covers the 24 hours before the digest instant and only the alerts the channel's routing takes (its
rules and lowest severity, ``notification_routed``): the alerts opened, acknowledged and resolved in that span
(counted from ``alert_events``), and the alerts active at the instant (opened before it, not yet resolved; an
alert acknowledged before it counts as acknowledged), by rule and severity and each with its link. Alerts are the
hub's, so a digest is hub-wide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

__all__ = ["LISTED", "Digest", "digest_mail", "digest_payload", "queue_digests", "summarize"]

#: active alerts listed one by one in a digest (the counts by rule and severity cover all of them)
LISTED = 100

# Each channel's newest digest instant at or before now, kept only when its day has no row yet.
_DUE = """
WITH newest AS (
    SELECT DISTINCT ON (c.channel_id) c.channel_id, d.day, d.at
    FROM notification_channels c
    CROSS JOIN (
        SELECT (%(now)s::timestamptz AT TIME ZONE %(tz)s)::date - k AS day FROM (VALUES (0), (1)) v (k)
    ) today_and_yesterday
    CROSS JOIN LATERAL (
        SELECT today_and_yesterday.day, (today_and_yesterday.day + make_time(c.digest_hour, 0, 0)) AT TIME ZONE %(tz)s
    ) d (day, at)
    WHERE c.enabled AND c.digest_hour IS NOT NULL AND d.at <= %(now)s
    ORDER BY c.channel_id, d.day DESC
)
SELECT channel_id, day, at FROM newest
WHERE NOT EXISTS (SELECT 1 FROM notifications n WHERE n.channel_id = newest.channel_id AND n.digest_day = newest.day)
ORDER BY channel_id
"""

_CHANGES = """
SELECT e.state, count(*) FROM alert_events e
JOIN alerts a ON a.alert_id = e.alert_id
JOIN notification_channels c ON c.channel_id = %(channel_id)s
WHERE e.time > %(at)s - interval '24 hours' AND e.time <= %(at)s AND notification_routed(c, a.rule_id, a.severity)
GROUP BY e.state
"""

_ACTIVE = """
SELECT a.alert_id, a.rule_id, a.subject, a.site_id, a.severity, a.message, a.opened_at,
       CASE WHEN a.acknowledged_at <= %(at)s THEN 'acknowledged' ELSE 'open' END AS state
FROM alerts a
JOIN notification_channels c ON c.channel_id = %(channel_id)s
WHERE a.opened_at <= %(at)s AND (a.resolved_at IS NULL OR a.resolved_at > %(at)s)
  AND notification_routed(c, a.rule_id, a.severity)
ORDER BY array_position(ARRAY['critical', 'warning', 'info'], a.severity), a.rule_id, a.opened_at, a.alert_id
"""

_QUEUE = """
INSERT INTO notifications (channel_id, digest_day, digest, next_attempt_at)
VALUES (%(channel_id)s, %(day)s, %(digest)s, %(at)s)
ON CONFLICT DO NOTHING
"""


@dataclass(frozen=True)
class Digest:
    """One channel's day: the changes of the 24 hours before ``at`` and the alerts active at ``at``."""

    day: date
    at: datetime
    opened: int
    acknowledged: int
    resolved: int
    active: list[dict[str, Any]]  # the first LISTED active alerts, most severe first
    active_count: int
    by_rule: list[dict[str, Any]]  # {rule_id, severity, open, acknowledged}

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "at": self.at.isoformat(),
            "opened": self.opened,
            "acknowledged": self.acknowledged,
            "resolved": self.resolved,
            "active_count": self.active_count,
            "by_rule": self.by_rule,
            "active": [{**a, "opened_at": a["opened_at"].isoformat()} for a in self.active],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Digest:
        active = [{**a, "opened_at": datetime.fromisoformat(a["opened_at"])} for a in doc["active"]]
        return cls(
            date.fromisoformat(doc["day"]),
            datetime.fromisoformat(doc["at"]),
            doc["opened"],
            doc["acknowledged"],
            doc["resolved"],
            active,
            doc["active_count"],
            doc["by_rule"],
        )


def summarize(conn: psycopg.Connection, *, channel_id: str, day: date, at: datetime) -> Digest:
    """The digest of ``channel_id`` as of ``at``: what its routing takes, from the alerts' history."""
    params = {"channel_id": channel_id, "at": at}
    changes: dict[str, int] = {state: n for state, n in conn.execute(_CHANGES, params).fetchall()}
    with conn.cursor(row_factory=dict_row) as cur:
        active = cur.execute(_ACTIVE, params).fetchall()
    counts: Counter[tuple[str, str, str]] = Counter((a["rule_id"], a["severity"], a["state"]) for a in active)
    groups = dict.fromkeys((a["rule_id"], a["severity"]) for a in active)  # in the listing's order
    by_rule = [
        {"rule_id": r, "severity": s, "open": counts[r, s, "open"], "acknowledged": counts[r, s, "acknowledged"]}
        for r, s in groups
    ]
    return Digest(
        day,
        at,
        int(changes.get("open", 0)),
        int(changes.get("acknowledged", 0)),
        int(changes.get("resolved", 0)),
        active[:LISTED],
        len(active),
        by_rule,
    )


def queue_digests(conn: psycopg.Connection, *, now: datetime, timezone: str) -> int:
    """Queue the digests due at ``now`` that are not queued yet; returns how many were queued."""
    queued = 0
    for channel_id, day, at in conn.execute(_DUE, {"now": now, "tz": timezone}).fetchall():
        with conn.transaction():
            digest = summarize(conn, channel_id=channel_id, day=day, at=at)
            row = {"channel_id": channel_id, "day": day, "at": at, "digest": Jsonb(digest.as_json())}
            queued += conn.execute(_QUEUE, row).rowcount
    return queued


# -- the message ---------------------------------------------------------------------------------------------------
_TEXT = {
    "de": {
        "subject": "Tagesbericht",
        "since": "In den 24 Stunden bis",
        "opened": "neu",
        "acknowledged": "bestätigt",
        "resolved": "behoben",
        "active": "Aktive Alarme",
        "active_now": "aktiv",
        "none": "keine",
        "more": "weitere",
        "open": "offen",
        "link": "Alle Alarme im Betriebsportal",
    },
    "en": {
        "subject": "Daily digest",
        "since": "In the 24 hours up to",
        "opened": "opened",
        "acknowledged": "acknowledged",
        "resolved": "resolved",
        "active": "Active alerts",
        "active_now": "active",
        "none": "none",
        "more": "more",
        "open": "open",
        "link": "All alerts in the operator page",
    },
}


def digest_mail(
    digest: Digest,
    *,
    language: str,
    timezone: str,
    link: Callable[[int], str],
    alerts_page: str,
    sender: str,
    to: str,
) -> EmailMessage:
    """The plain-text digest; ``link(alert_id)`` gives an alert's link."""
    t = _TEXT.get(language, _TEXT["en"])
    tz = ZoneInfo(timezone)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = (
        f"[stadtpuls] {t['subject']} {digest.day.isoformat()}: {digest.active_count} {t['active_now']}, "
        f"{digest.opened} {t['opened']}, {digest.resolved} {t['resolved']}"
    )
    at = digest.at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        f"{t['since']} {at}: {digest.opened} {t['opened']}, {digest.acknowledged} {t['acknowledged']}, "
        f"{digest.resolved} {t['resolved']}.",
        "",
        f"{t['active']}: {digest.active_count or t['none']}",
    ]
    for g in digest.by_rule:
        lines.append(
            f"  {g['rule_id']} ({g['severity']}): {g['open']} {t['open']}, {g['acknowledged']} {t['acknowledged']}"
        )
    if digest.active:
        lines.append("")
    for a in digest.active:
        since = a["opened_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M")
        lines.append(f"- [{a['severity']}] {a['rule_id']} {a['subject']}: {a['message']} ({since}, {t[a['state']]})")
        lines.append(f"  {link(a['alert_id'])}")
    if digest.active_count > len(digest.active):
        lines.append(f"  ... {digest.active_count - len(digest.active)} {t['more']}")
    lines += ["", f"{t['link']}: {alerts_page}"]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def digest_payload(digest: Digest, *, delivery: int, link: Callable[[int], str], alerts_page: str) -> dict[str, Any]:
    """The webhook body of a digest (a state change's body has ``change`` and ``alert`` instead of ``digest``)."""
    doc = digest.as_json()
    doc["active"] = [{**a, "link": link(a["alert_id"])} for a in doc["active"]]
    return {"delivery": delivery, "digest": doc, "link": alerts_page}
