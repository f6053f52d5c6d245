"""The alert tables' statements, shared by the command line (sync) and the API (async), and the YAML import.

Each statement is a constant with named placeholders; the sync helpers here and ``api/queries/alerts.py`` run
the same text. An acknowledgement is a state change like the evaluator's: it writes an ``alert_events`` row,
whose trigger queues the notifications.

Exceptions::

    RuleError           (from .kinds) a rule in an import is not valid
    ChannelError        a notification channel in an import is not valid (attributes: channel_id, field)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psycopg
import yaml
from psycopg.types.json import Jsonb

from .kinds import SEVERITIES, Rule, RuleError

__all__ = [
    "ACK",
    "ALERT_EVENTS",
    "GET_ALERT",
    "LIST_ALERTS",
    "LIST_CHANNELS",
    "LIST_NOTIFICATIONS",
    "LIST_RULES",
    "OPEN_COUNTS",
    "RESEND",
    "UPSERT_RULE",
    "Channel",
    "ChannelError",
    "acknowledge",
    "channel_params",
    "import_config",
    "load_config",
    "rule_params",
    "save_channel",
    "save_rule",
]


class ChannelError(ValueError):
    def __init__(self, channel_id: str, field: str, message: str) -> None:
        super().__init__(f"channel {channel_id!r}: {field}: {message}")
        self.channel_id = channel_id
        self.field = field


_ALERT = """
SELECT alert_id, rule_id, subject, dev_eui, site_id, severity, state, value, message, opened_at, acknowledged_at,
       acknowledged_by, ack_note, resolved_at
FROM alerts
"""
GET_ALERT = _ALERT + "WHERE alert_id = %(alert_id)s"
#: alerts, active ones first (open, acknowledged), then newest; every filter optional
LIST_ALERTS = (
    _ALERT
    + """WHERE (%(state)s::text IS NULL OR state = %(state)s)
  AND (%(rule_id)s::text IS NULL OR rule_id = %(rule_id)s)
  AND (%(severity)s::text IS NULL OR severity = %(severity)s)
  AND (%(site_id)s::text IS NULL OR site_id = %(site_id)s)
  AND (%(since)s::timestamptz IS NULL OR opened_at >= %(since)s OR resolved_at >= %(since)s)
ORDER BY array_position(ARRAY['open', 'acknowledged', 'resolved'], state),
         array_position(ARRAY['critical', 'warning', 'info'], severity), opened_at DESC, alert_id DESC
LIMIT %(limit)s
"""
)

ALERT_EVENTS = "SELECT time, state, actor, note FROM alert_events WHERE alert_id = %(alert_id)s ORDER BY event_id"

#: acknowledge an open alert; returns its id, or nothing when it is not open
ACK = """
WITH acked AS (
    UPDATE alerts SET state = 'acknowledged', acknowledged_at = %(now)s, acknowledged_by = %(actor)s,
                      ack_note = %(note)s
    WHERE alert_id = %(alert_id)s AND state = 'open'
    RETURNING alert_id
), ev AS (
    INSERT INTO alert_events (alert_id, time, state, actor, note)
    SELECT alert_id, %(now)s, 'acknowledged', %(actor)s, %(note)s FROM acked
)
SELECT alert_id FROM acked
"""

OPEN_COUNTS = """
SELECT r.rule_id, count(a.alert_id) FILTER (WHERE a.state = 'open'),
       count(a.alert_id) FILTER (WHERE a.state = 'acknowledged')
FROM alert_rules r LEFT JOIN alerts a ON a.rule_id = r.rule_id AND a.state <> 'resolved'
GROUP BY r.rule_id ORDER BY r.rule_id
"""

LIST_RULES = "SELECT rule_id, kind, enabled, severity, params, description FROM alert_rules ORDER BY rule_id"

UPSERT_RULE = """
INSERT INTO alert_rules (rule_id, kind, enabled, severity, params, description)
VALUES (%(rule_id)s, %(kind)s, %(enabled)s, %(severity)s, %(params)s, %(description)s)
ON CONFLICT (rule_id) DO UPDATE SET kind = EXCLUDED.kind, enabled = EXCLUDED.enabled, severity = EXCLUDED.severity,
    params = EXCLUDED.params, description = EXCLUDED.description, updated_at = now(), evaluated_at = NULL
"""
_INSERT_RULE = UPSERT_RULE.split("ON CONFLICT")[0] + "ON CONFLICT (rule_id) DO NOTHING"

LIST_CHANNELS = """
SELECT channel_id, kind, target, rules, min_severity, quiet_from, quiet_to, enabled, digest_hour, digest_only
FROM notification_channels ORDER BY channel_id
"""

_UPSERT_CHANNEL = """
INSERT INTO notification_channels (channel_id, kind, target, secret, rules, min_severity, quiet_from, quiet_to,
                                   enabled, digest_hour, digest_only)
VALUES (%(channel_id)s, %(kind)s, %(target)s, %(secret)s, %(rules)s, %(min_severity)s, %(quiet_from)s,
        %(quiet_to)s, %(enabled)s, %(digest_hour)s, %(digest_only)s)
ON CONFLICT (channel_id) DO UPDATE SET kind = EXCLUDED.kind, target = EXCLUDED.target, secret = EXCLUDED.secret,
    rules = EXCLUDED.rules, min_severity = EXCLUDED.min_severity, quiet_from = EXCLUDED.quiet_from,
    quiet_to = EXCLUDED.quiet_to, enabled = EXCLUDED.enabled, digest_hour = EXCLUDED.digest_hour,
    digest_only = EXCLUDED.digest_only
"""

#: notifications, newest first; a state change's has its alert, change and time, a digest its day (``digest_day``)
LIST_NOTIFICATIONS = """
SELECT n.notification_id, n.channel_id, n.status, n.attempts, n.next_attempt_at, n.last_error, n.sent_at,
       e.alert_id, e.state AS change, e.time, n.digest_day
FROM notifications n LEFT JOIN alert_events e ON e.event_id = n.event_id
WHERE (%(status)s::text IS NULL OR n.status = %(status)s)
ORDER BY n.notification_id DESC LIMIT %(limit)s
"""

#: a dead (or pending) notification goes out again at the next sender round
RESEND = """
UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
WHERE notification_id = %(notification_id)s AND status <> 'sent' RETURNING notification_id
"""


@dataclass(frozen=True)
class Channel:
    channel_id: str
    kind: str  # webhook | email
    target: str
    secret: str | None = None
    rules: tuple[str, ...] | None = None
    min_severity: str = "warning"
    quiet_from: int | None = None
    quiet_to: int | None = None
    enabled: bool = True
    digest_hour: int | None = None  # a daily digest at this local hour (.digest)
    digest_only: bool = False  # the digest only, no notification per state change

    @classmethod
    def checked(cls, raw: Mapping[str, Any]) -> Channel:
        cid = str(raw.get("id") or raw.get("channel_id") or "")
        if not cid:
            raise ChannelError("?", "id", "missing")
        kind = raw.get("kind")
        target = str(raw.get("target") or "")
        if kind == "webhook":
            if urlsplit(target).scheme not in ("http", "https") or not urlsplit(target).hostname:
                raise ChannelError(cid, "target", "a webhook needs an http(s) URL")
            if not raw.get("secret"):
                raise ChannelError(cid, "secret", "a webhook needs a signing secret")
        elif kind == "email":
            if not target or any("@" not in a for a in target.split(",")):
                raise ChannelError(cid, "target", "comma-separated e-mail addresses")
        else:
            raise ChannelError(cid, "kind", f"{kind!r} is not webhook or email")
        severity = str(raw.get("min_severity", "warning"))
        if severity not in SEVERITIES:
            raise ChannelError(cid, "min_severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
        quiet = raw.get("quiet_hours")
        if quiet is not None and (
            not isinstance(quiet, list | tuple)
            or len(quiet) != 2
            or not all(isinstance(h, int) and 0 <= h <= 23 for h in quiet)
        ):
            raise ChannelError(cid, "quiet_hours", "two local hours [from, to], e.g. [22, 6]")
        digest_hour = raw.get("digest_hour")
        if digest_hour is not None and (
            isinstance(digest_hour, bool) or not isinstance(digest_hour, int) or not 0 <= digest_hour <= 23
        ):
            raise ChannelError(cid, "digest_hour", "a local hour 0..23, e.g. 7")
        digest_only = raw.get("digest_only", False)
        if not isinstance(digest_only, bool):
            raise ChannelError(cid, "digest_only", "must be true or false")
        if digest_only and digest_hour is None:
            raise ChannelError(cid, "digest_only", "needs a digest_hour")
        rules = raw.get("rules")
        return cls(
            cid,
            str(kind),
            target,
            str(raw["secret"]) if raw.get("secret") else None,
            tuple(str(r) for r in rules) if rules else None,
            severity,
            quiet[0] if quiet else None,
            quiet[1] if quiet else None,
            bool(raw.get("enabled", True)),
            digest_hour,
            digest_only,
        )


def rule_params(rule: Rule) -> dict[str, Any]:
    return {
        "rule_id": rule.rule_id,
        "kind": rule.kind,
        "enabled": rule.enabled,
        "severity": rule.severity,
        "params": Jsonb(dict(rule.params)),
        "description": rule.description,
    }


def channel_params(ch: Channel) -> dict[str, Any]:
    return {
        "channel_id": ch.channel_id,
        "kind": ch.kind,
        "target": ch.target,
        "secret": ch.secret,
        "rules": list(ch.rules) if ch.rules else None,
        "min_severity": ch.min_severity,
        "quiet_from": ch.quiet_from,
        "quiet_to": ch.quiet_to,
        "enabled": ch.enabled,
        "digest_hour": ch.digest_hour,
        "digest_only": ch.digest_only,
    }


def save_rule(conn: psycopg.Connection, rule: Rule, *, replace: bool = True) -> None:
    conn.execute(UPSERT_RULE if replace else _INSERT_RULE, rule_params(rule))


def save_channel(conn: psycopg.Connection, channel: Channel) -> None:
    conn.execute(_UPSERT_CHANNEL, channel_params(channel))


def load_config(text: str) -> tuple[list[Rule], list[Channel]]:
    """Rules and channels from YAML (``rules:`` and ``channels:`` lists); every entry checked before any is saved."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise RuleError("?", "yaml", str(e)) from None
    if not isinstance(doc, dict) or not set(doc) <= {"rules", "channels"}:
        raise RuleError("?", "yaml", "a mapping with the keys rules and channels")
    rules = [Rule.checked(r) for r in doc.get("rules") or []]
    channels = [Channel.checked(c) for c in doc.get("channels") or []]
    return rules, channels


def import_config(conn: psycopg.Connection, text: str) -> tuple[int, int]:
    """Save the rules and channels of a YAML document in one transaction; returns their numbers."""
    rules, channels = load_config(text)
    with conn.transaction():
        for rule in rules:
            save_rule(conn, rule)
        for ch in channels:
            save_channel(conn, ch)
    return len(rules), len(channels)


def acknowledge(conn: psycopg.Connection, alert_id: int, *, actor: str, note: str, now: Any) -> bool:
    """Acknowledge an open alert (queues its notifications); False when it is not open."""
    with conn.transaction():
        row = conn.execute(ACK, {"alert_id": alert_id, "actor": actor, "note": note, "now": now}).fetchone()
    return row is not None
