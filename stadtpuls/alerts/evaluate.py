"""One evaluation round: every enabled rule, one statement each, all in one transaction.

Per rule, one statement (data-modifying CTEs) takes the kind's candidates (:mod:`.kinds`) and

1. opens an alert for each firing subject without an active (open or acknowledged) one;
2. resolves the active alerts whose subject is no candidate any more (the condition cleared past the hysteresis);
3. records each change in ``alert_events``, whose trigger queues the notifications (the outbox);
4. sets the rule's ``evaluated_at``.

A subject that keeps firing changes nothing, so a round writes (and notifies) only state changes; the message of
an alert (and its site) is made only when it opens. Each rule's wall time is in the result (``seconds``). The round
takes ``now`` as a parameter, so a simulated clock evaluates history as it would have been seen. A rule whose
``every_s`` has not passed since its last evaluation (``alert_rules.evaluated_at``) is left out of the round.

Before the rules, a round in which a rule that reads them is due brings the day summaries (``device_daily``,
``device_health``, migration 0015) up to date for the devices the ingest touched since they last were; the
radio, battery and bin rules read those instead of days of readings, so a round's cost does not grow with the
data kept.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from stadtpuls.logs import get_logger

from .kinds import KINDS, Rule

__all__ = ["RoundResult", "evaluate", "load_rules"]

_ROUND = """
WITH cand AS ({candidates}),
active AS (
    SELECT alert_id, subject FROM alerts WHERE rule_id = %(rule_id)s AND state <> 'resolved'
),
opened AS (  -- the device's site and the message only for the alerts that open
    INSERT INTO alerts (rule_id, subject, dev_eui, site_id, severity, state, value, message, opened_at)
    SELECT %(rule_id)s, c.subject, c.dev_eui, (SELECT d.site_id FROM devices d WHERE d.dev_eui = c.dev_eui),
           %(severity)s, 'open', c.value, coalesce({message}, ''), %(now)s
    FROM cand c
    WHERE c.firing AND NOT EXISTS (SELECT 1 FROM active a WHERE a.subject = c.subject)
    RETURNING alert_id
),
resolved AS (
    UPDATE alerts SET state = 'resolved', resolved_at = %(now)s
    WHERE alert_id IN (SELECT a.alert_id FROM active a WHERE NOT EXISTS (SELECT 1 FROM cand c
                                                                         WHERE c.subject = a.subject))
    RETURNING alert_id
),
events AS (
    INSERT INTO alert_events (alert_id, time, state)
    SELECT alert_id, %(now)s, 'open' FROM opened
    UNION ALL
    SELECT alert_id, %(now)s, 'resolved' FROM resolved
),
evaluated AS (
    UPDATE alert_rules SET evaluated_at = %(now)s WHERE rule_id = %(rule_id)s
)
SELECT (SELECT count(*) FROM opened), (SELECT count(*) FROM resolved)
"""

log = get_logger("stadtpuls.alerts.evaluate")
_RULES = """
SELECT rule_id, kind, severity, params, enabled, description, evaluated_at FROM alert_rules ORDER BY rule_id
"""
_SUMMARIZE = "SELECT device_daily_refresh()"
# A rule's statement runs for milliseconds; its estimated cost over 100,000 devices passes jit_above_cost all the
# same, and compiling it (0.1-0.2 s) would cost more than the statement.
_NO_JIT = "SET LOCAL jit = off"


@dataclass
class RoundResult:
    now: datetime
    opened: Counter[str] = field(default_factory=Counter)  # rule_id -> alerts opened
    resolved: Counter[str] = field(default_factory=Counter)
    summarized: int = 0  # device-days of the summaries brought up to date
    skipped: list[str] = field(default_factory=list)  # rules not due in this round
    failed: dict[str, str] = field(default_factory=dict)  # rule_id -> the database's error (the others still ran)
    seconds: dict[str, float] = field(default_factory=dict)  # rule_id (or "summaries") -> wall time of its statements


def load_rules(conn: psycopg.Connection) -> list[tuple[Rule, datetime | None]]:
    """Every rule of a known kind with its last evaluation time (a kind this version does not know is left alone)."""
    rules = []
    for rule_id, kind, severity, params, enabled, description, evaluated_at in conn.execute(_RULES):
        if kind in KINDS:
            rules.append((Rule(rule_id, kind, severity, params, enabled, description), evaluated_at))
    return rules


def _due(rule: Rule, last: datetime | None, now: datetime) -> bool:
    if last is None or now < last:  # never evaluated, or replaying an earlier time
        return True
    return (now - last).total_seconds() >= rule.values()["every_s"]


def evaluate(conn: psycopg.Connection, *, now: datetime, next_service: datetime) -> RoundResult:
    """Evaluate every enabled rule at ``now`` in one transaction; returns the changes per rule."""
    result = RoundResult(now)
    with conn.transaction():
        conn.execute(_NO_JIT)
        due: list[Rule] = []
        for rule, last in load_rules(conn):
            if not rule.enabled:
                continue
            if not _due(rule, last, now):
                result.skipped.append(rule.rule_id)
                continue
            due.append(rule)
        if any(KINDS[rule.kind].summaries for rule in due):  # brought up to date when a rule reads them
            started = time.perf_counter()
            try:
                with conn.transaction():  # a savepoint: the rules still run on the summaries as they were
                    row = conn.execute(_SUMMARIZE).fetchone()
                    result.summarized = int(row[0]) if row else 0
            except (psycopg.DataError, psycopg.ProgrammingError, psycopg.InternalError, psycopg.IntegrityError) as e:
                result.failed["summaries"] = str(e).strip()
                log.error("summaries not refreshed", extra={"error": str(e).strip()})
            result.seconds["summaries"] = time.perf_counter() - started
        for rule in due:
            kind = KINDS[rule.kind]
            statement = sql.SQL(_ROUND).format(candidates=sql.SQL(kind.sql), message=sql.SQL(kind.message))
            params = {**rule.values(), "now": now, "next_service": next_service}
            params.update(rule_id=rule.rule_id, severity=rule.severity)
            started = time.perf_counter()
            try:
                with conn.transaction():  # a savepoint: a rule that fails (a parameter out of range) costs only itself
                    row = conn.execute(statement, params).fetchone()
            except (psycopg.DataError, psycopg.ProgrammingError) as e:
                result.failed[rule.rule_id] = str(e).strip()
                log.error("rule failed", extra={"rule": rule.rule_id, "error": str(e).strip()})
                continue
            finally:
                result.seconds[rule.rule_id] = time.perf_counter() - started
            assert row is not None
            result.opened[rule.rule_id] += row[0]
            result.resolved[rule.rule_id] += row[1]
    return result
