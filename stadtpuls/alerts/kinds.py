"""Rule kinds: what each kind watches, its parameters with their defaults, and its set-based SQL.

A kind's SQL returns the *candidates* of one evaluation round, one row per subject, with the columns
``subject`` (a DevEUI, or ``hub``), ``dev_eui``, ``value`` (the figure shown with the alert), ``firing`` and
``message`` (or, for a kind with many candidates that keep firing, the columns its ``message`` expression reads:
that message is made only for the alerts that open). A subject with ``firing`` true is beyond the limit; a
candidate with ``firing`` false lies inside the hysteresis band (near the limit: an open alert stays open, none
opens); a subject that is no candidate is clear (its open alert resolves). One statement per rule, whatever the
number of devices.

Placeholders: ``%(now)s`` (evaluation time), ``%(next_service)s`` (start of the next collection round) and the
kind's parameters by name. Every kind also takes ``every_s``: a rule is evaluated at most that often (the kinds
that read days of readings and change slowly default to 10 minutes or an hour; between two of its evaluations a
rule's alerts stay as they are).

Exceptions::

    RuleError           a rule's kind, severity or parameters are not valid (attributes: rule_id, field)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "SEVERITIES", "Kind", "Rule", "RuleError", "default_rules"]

SEVERITIES = ("info", "warning", "critical")


class RuleError(ValueError):
    def __init__(self, rule_id: str, field: str, message: str) -> None:
        super().__init__(f"rule {rule_id!r}: {field}: {message}")
        self.rule_id = rule_id
        self.field = field


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    params: Mapping[str, float]  # name -> default (every parameter is a number)
    sql: str
    severity: str = "warning"
    summaries: bool = False  # reads the device summaries (``device_health``), which a round then brings up to date
    message: str = "c.message"  # the opened alert's message, an SQL expression over the candidate row ``c``


_SILENT = """
SELECT d.dev_eui AS subject, d.dev_eui,
       extract(epoch FROM %(now)s - s.last_time) / d.report_interval_s AS value,
       true AS firing, s.last_time, d.report_interval_s
FROM devices d JOIN device_state s ON s.dev_eui = d.dev_eui
WHERE s.last_time < %(now)s - make_interval(secs => d.report_interval_s * %(intervals)s)
  -- implied by the line above (no device's limit lies after the shortest interval's), but on the state alone: only
  -- the states it keeps are joined with their devices (the shortest interval from an index, migration 0018)
  AND s.last_time < %(now)s - make_interval(secs => (SELECT min(report_interval_s) FROM devices) * %(intervals)s)
"""

# Made for the devices whose alert opens only (after a network-server outage every device stays silent for rounds).
_SILENT_MESSAGE = """
format('silent since %%s (%%s report intervals)', to_char(c.last_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
       round((extract(epoch FROM %(now)s - c.last_time) / c.report_interval_s)::numeric, 1))
"""

# The rules below read one row per device, ``device_health_asof(now)`` (migration 0015): the figures of its day
# summaries, which every round brings up to date for the devices the ingest touched.

# The newest battery figure of each device, if it lies in the window.
_BATTERY = """
WITH latest AS (
    SELECT dev_eui, battery_v, battery_pct FROM device_health_asof(%(now)s)
    WHERE battery_time > %(now)s - make_interval(hours => %(window_h)s::int) AND battery_time <= %(now)s
)
SELECT dev_eui AS subject, dev_eui, coalesce(battery_v, battery_pct) AS value,
       coalesce(battery_v < %(low_v)s, false) OR coalesce(battery_pct < %(low_pct)s, false) AS firing,
       format('battery %%s', concat_ws(' / ', round(battery_v::numeric, 2) || ' V',
              round(battery_pct::numeric) || ' %%')) AS message
FROM latest
WHERE battery_v < %(low_v)s + %(hysteresis_v)s OR battery_pct < %(low_pct)s + %(hysteresis_pct)s
"""

# Median of the daily median RSSI and SNR, and mean spreading factor, of the 7 days ending with the device's newest
# day with uplinks (today or yesterday) against the 7 days before.
_RADIO = """
WITH r AS (
    SELECT * FROM device_health_asof(%(now)s)
    WHERE radio_day >= (%(now)s::timestamptz AT TIME ZONE 'UTC')::date - 1
)
SELECT dev_eui AS subject, dev_eui, rssi_now - rssi_before AS value,
       rssi_now < rssi_before - %(rssi_margin_db)s OR snr_now < snr_before - %(snr_margin_db)s
           OR sf_now >= sf_before + %(sf_rise)s AS firing,
       format('median RSSI %%s dBm (was %%s), SNR %%s dB (was %%s), SF %%s (was %%s)',
              round(rssi_now::numeric), round(rssi_before::numeric), round(snr_now::numeric, 1),
              round(snr_before::numeric, 1), round(sf_now::numeric, 1), round(sf_before::numeric, 1)) AS message
FROM r
WHERE n_now >= %(min_uplinks)s AND n_before >= %(min_uplinks)s
  AND (rssi_now < rssi_before - %(rssi_margin_db)s + %(hysteresis_db)s
       OR snr_now < snr_before - %(snr_margin_db)s + %(hysteresis_db)s
       OR sf_now >= sf_before + %(sf_rise)s - 0.5)
"""

# A rejoin after earlier uplinks (the counter restarted), or more lost frames than allowed, within the window. The
# devices looked at are those that joined within the window (by the index on ``last_join``, migration 0018) and
# those with lost frames in it, not every device's state.
_FRAMES = """
WITH lost AS (
    SELECT dev_eui, sum(missing) AS missing FROM fcnt_gaps
    WHERE time > %(now)s - make_interval(hours => %(window_h)s::int) AND time <= %(now)s
    GROUP BY dev_eui
), looked_at AS (
    SELECT dev_eui FROM device_state
    WHERE %(resets)s::int = 1
      AND last_join > %(now)s - make_interval(hours => %(window_h)s::int) AND last_join <= %(now)s
    UNION
    SELECT dev_eui FROM lost WHERE missing > %(max_lost)s
)
SELECT s.dev_eui AS subject, s.dev_eui, coalesce(l.missing, 0)::double precision AS value, true AS firing,
       concat_ws('; ', CASE WHEN rejoined THEN 'frame counter reset (rejoin) at '
                 || to_char(s.last_join AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') END,
                 CASE WHEN l.missing > %(max_lost)s THEN l.missing || ' frames lost' END) AS message
FROM looked_at x
JOIN device_state s ON s.dev_eui = x.dev_eui
LEFT JOIN lost l ON l.dev_eui = s.dev_eui
CROSS JOIN LATERAL (
    SELECT %(resets)s::int = 1
       AND s.last_join > %(now)s - make_interval(hours => %(window_h)s::int) AND s.last_join <= %(now)s
       AND EXISTS (SELECT 1 FROM uplinks u WHERE u.dev_eui = s.dev_eui AND u.time < s.last_join) AS rejoined
) j
WHERE j.rejoined OR l.missing > %(max_lost)s
"""

# The newest fill (if within `fit_h`), and the fill extrapolated to the next round by its least-squares trend
# (rising only) over the newest fill's day and the two before (x in hours). Only the health rows whose fill lies
# above a floor are read (by the indexes of migration 0022): no candidate's fill lies below the lowest limit less
# the hysteresis and the steepest rise of any stored bin until the next round (less a point, for rounding). A
# floor that is not a finite number, or a replay of a past time (whose health rows are recomputed, with their own
# trends), reads every row.
_BIN_FULL = """
WITH floor AS (
    SELECT CASE WHEN x > -1e300 AND x < 1e300 AND coalesce((SELECT max(last_time) FROM device_health) <= %(now)s, true)
                THEN x - 1 - abs(x) * 1e-9 ELSE '-infinity' END AS fill
    FROM (SELECT least(%(threshold_pct)s, (SELECT min(threshold_pct) FROM sites)) - %(hysteresis_pct)s
                 - CASE WHEN %(predict)s::int = 1
                   THEN greatest((SELECT max(fill_rate(fill_n, fill_sx, fill_sy, fill_sxy, fill_sxx))
                                  FROM device_health), 0)
                        * greatest(extract(epoch FROM %(next_service)s::timestamptz - %(now)s), 0) / 3600
                   ELSE 0 END AS x) b
), f AS (
    SELECT h.dev_eui, h.fill_pct AS fill, coalesce(s.threshold_pct, %(threshold_pct)s) AS limit_pct,
           h.fill_pct + CASE WHEN %(predict)s::int = 1 AND t.det > 0
               THEN greatest((h.fill_n * h.fill_sxy - h.fill_sx * h.fill_sy) / t.det, 0)  -- %% per hour
                    * greatest(extract(epoch FROM %(next_service)s::timestamptz - %(now)s), 0) / 3600 ELSE 0 END
               AS predicted
    FROM device_health_asof(%(now)s) h
    CROSS JOIN LATERAL (SELECT h.fill_n * h.fill_sxx - h.fill_sx * h.fill_sx AS det) t
    JOIN devices d ON d.dev_eui = h.dev_eui
    LEFT JOIN sites s ON s.site_id = d.site_id
    WHERE h.fill_pct >= (SELECT fill FROM floor)
      AND h.fill_time > %(now)s - make_interval(hours => %(fit_h)s::int) AND h.fill_time <= %(now)s
)
SELECT dev_eui AS subject, dev_eui, fill AS value, fill >= limit_pct OR predicted >= limit_pct AS firing, fill,
       limit_pct, predicted
FROM f
WHERE fill >= limit_pct - %(hysteresis_pct)s OR predicted >= limit_pct - %(hysteresis_pct)s
"""
# Formatted for the bins whose alert opens only (a full bin stays a candidate round after round).
_BIN_FULL_MESSAGE = """
CASE WHEN c.fill >= c.limit_pct THEN format('fill %%s %%%% over its limit of %%s %%%%', round(c.fill::numeric),
                                            round(c.limit_pct::numeric))
     ELSE format('fill %%s %%%%, expected %%s %%%% before the next round (limit %%s %%%%)',
                 round(c.fill::numeric), round(c.predicted::numeric), round(c.limit_pct::numeric)) END
"""

# A space whose state stayed the same over the window while enough other spaces of its lot changed: each space's
# newest event and the newest of the other state in the window, kept per rule and brought up to date for the spaces
# with events since the rule's last round (migration 0023), instead of every event of the window in every round.
_PARKING = """
SELECT subject, dev_eui, value, firing, message
FROM parking_stuck_candidates(%(rule_id)s, %(hours)s::int, %(min_changing)s, %(now)s)
"""

# Time from the network server's receive time to the hub's, 95th percentile over the window.
_INGEST_LAG = """
WITH lag AS (
    SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - time)) AS p95
    FROM uplinks
    WHERE time > %(now)s - make_interval(mins => %(window_min)s::int) AND time <= %(now)s
)
SELECT 'hub' AS subject, NULL::text AS dev_eui, p95 AS value, p95 > %(max_lag_s)s AS firing,
       format('ingest lag %%s s (95th percentile)', round(p95::numeric, 1)) AS message
FROM lag WHERE p95 > %(max_lag_s)s * 0.8
"""

_DEAD_LETTERS = """
WITH d AS (
    SELECT count(*)::double precision / %(window_min)s AS per_min FROM dead_letters
    WHERE received_at > %(now)s - make_interval(mins => %(window_min)s::int) AND received_at <= %(now)s
)
SELECT 'hub' AS subject, NULL::text AS dev_eui, per_min AS value, per_min > %(per_minute)s AS firing,
       format('%%s dead letters per minute', round(per_min::numeric, 1)) AS message
FROM d WHERE per_min > %(per_minute)s * 0.8
"""

# The ingest's spool holds messages not yet written (the database is away or slow), from its last /health answer.
_SPOOL = """
SELECT 'hub' AS subject, NULL::text AS dev_eui, spool_messages::double precision AS value, true AS firing,
       format('%%s messages (%%s bytes) in the ingest''s spool, not yet written', spool_messages, spool_bytes)
           AS message
FROM ingest_status
WHERE source = '' AND reachable AND checked_at <= %(now)s AND spool_messages >= %(min_messages)s
"""

# A network-server source whose MQTT connection is down, or the ingest not answering at all.
_SOURCE = """
SELECT CASE WHEN source = '' THEN 'ingest' ELSE 'source:' || source END AS subject, NULL::text AS dev_eui,
       NULL::double precision AS value, true AS firing,
       CASE WHEN source = '' THEN format('the ingest does not answer at its health URL (%%s)', error)
            ELSE format('network-server source %%s disconnected', source) END AS message
FROM ingest_status
WHERE checked_at <= %(now)s AND ((source = '' AND NOT reachable) OR (source <> '' AND connected = false))
"""

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "device_silent",
            "a device silent for more than `intervals` report intervals",
            {"intervals": 3},
            _SILENT,
            message=_SILENT_MESSAGE,
        ),
        Kind(
            "battery_low",
            "battery below the volt or percent limit (latest reading of the window)",
            {"low_v": 3.2, "low_pct": 20, "hysteresis_v": 0.05, "hysteresis_pct": 3, "window_h": 48, "every_s": 600},
            _BATTERY,
            summaries=True,
        ),
        Kind(
            "radio_worse",
            "median RSSI or SNR of the last 7 days below the 7 days before by a margin, or the spreading factor rising",
            {
                "rssi_margin_db": 8,
                "snr_margin_db": 4,
                "sf_rise": 1,
                "hysteresis_db": 1,
                "min_uplinks": 10,
                "every_s": 3600,
            },
            _RADIO,
            "info",
            summaries=True,
        ),
        Kind(
            "frame_loss",
            "a frame-counter reset (rejoin), or more than `max_lost` frames lost in the window",
            {"window_h": 24, "max_lost": 10, "resets": 1},
            _FRAMES,
            "info",
        ),
        Kind(
            "bin_full",
            "a bin over its threshold now, or predicted to cross it before the next service round",
            {"threshold_pct": 80, "hysteresis_pct": 5, "predict": 1, "fit_h": 48, "every_s": 600},
            _BIN_FULL,
            summaries=True,
            message=_BIN_FULL_MESSAGE,
        ),
        Kind(
            "parking_stuck",
            "a space sensor unchanged for `hours` while at least `min_changing` spaces of its lot changed",
            {"hours": 48, "min_changing": 3},
            _PARKING,
        ),
        Kind(
            "ingest_lag",
            "the hub receives uplinks late (95th percentile over the window above `max_lag_s`)",
            {"max_lag_s": 120, "window_min": 10},
            _INGEST_LAG,
            "critical",
        ),
        Kind(
            "dead_letters",
            "more than `per_minute` dead letters a minute over the window",
            {"per_minute": 10, "window_min": 5},
            _DEAD_LETTERS,
            "critical",
        ),
        Kind(
            "spool_in_use",
            "the ingest's spool holds at least `min_messages` messages not yet written (its /health, every round)",
            {"min_messages": 1},
            _SPOOL,
        ),
        Kind(
            "source_disconnected",
            "a network-server source of the ingest disconnected, or the ingest not answering (its /health)",
            {},
            _SOURCE,
            "critical",
        ),
    )
}


@dataclass(frozen=True)
class Rule:
    """A stored rule: ``params`` hold only the values that differ from the kind's defaults."""

    rule_id: str
    kind: str
    severity: str = "warning"
    params: Mapping[str, float] = field(default_factory=dict)
    enabled: bool = True
    description: str = ""

    @classmethod
    def checked(cls, raw: Mapping[str, Any]) -> Rule:
        """A rule from a mapping (YAML, JSON); unknown kinds, severities and parameters raise :class:`RuleError`."""
        rule_id = str(raw.get("id") or raw.get("rule_id") or "")
        if not rule_id:
            raise RuleError("?", "id", "missing")
        kind = KINDS.get(str(raw.get("kind")))
        if kind is None:
            raise RuleError(rule_id, "kind", f"unknown {raw.get('kind')!r}; one of {', '.join(KINDS)}")
        severity = str(raw.get("severity", kind.severity))
        if severity not in SEVERITIES:
            raise RuleError(rule_id, "severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
        params_raw = raw.get("params") or {}
        if not isinstance(params_raw, Mapping):
            raise RuleError(rule_id, "params", "must be a mapping of parameter names to numbers")
        params: dict[str, float] = {}
        for name, value in params_raw.items():
            if name not in kind.params and name != "every_s":
                known = ", ".join([*kind.params, *(() if "every_s" in kind.params else ("every_s",))])
                raise RuleError(rule_id, f"params.{name}", f"unknown; {kind.name} takes {known}")
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, int | float) or value < 0:
                raise RuleError(rule_id, f"params.{name}", f"must be a number >= 0, not {value!r}")
            params[name] = float(value)
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise RuleError(rule_id, "enabled", "must be true or false")
        return cls(rule_id, kind.name, severity, params, enabled, str(raw.get("description") or kind.description))

    def values(self) -> dict[str, float]:
        """Every parameter of the kind, the rule's own values over the defaults."""
        return {"every_s": 0.0, **KINDS[self.kind].params, **self.params}


def default_rules(*, battery_low_v: float, battery_low_pct: float) -> list[Rule]:
    """One rule per kind with the kind's defaults; the battery limits come from the hub's settings."""
    rules = []
    for kind in KINDS.values():
        params = {"low_v": battery_low_v, "low_pct": battery_low_pct} if kind.name == "battery_low" else {}
        rules.append(Rule(kind.name.replace("_", "-"), kind.name, kind.severity, params, True, kind.description))
    return rules
