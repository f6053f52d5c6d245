"""Fleet health dashboard: traffic, active alerts, silent devices, radio quality, dead letters, frame-counter gaps,
ingest lag and the TimescaleDB background jobs."""

from __future__ import annotations

from typing import Any

from .fragments import latest, to_time
from .panels import (
    barchart,
    constant,
    dashboard,
    override,
    prometheus_timeseries,
    stat,
    table,
    thresholds,
    timeseries,
)

__all__ = ["UID", "build"]

UID = "stadtpuls-fleet"
SILENT_FACTOR = 2.5  # report intervals without an uplink before a device counts as silent (the parking rule)

DEVICES = "SELECT count(*) AS devices FROM devices"
HEARD = f"""
SELECT count(DISTINCT dev_eui) AS devices_heard
FROM uplinks
WHERE time > {to_time()} - interval '1 hour' AND time <= $__timeTo()
"""
UPLINKS = "SELECT coalesce(sum(uplinks), 0) AS uplinks FROM uplinks_hourly WHERE $__timeFilter(bucket)"
DEAD = "SELECT count(*) AS dead_letters FROM dead_letters WHERE $__timeFilter(received_at)"

UPLINKS_PER_MINUTE = """
SELECT $__timeGroupAlias(time, $__interval), lns AS metric, count(*) / ($__interval_ms / 60000.0) AS uplinks_per_min
FROM uplinks
WHERE $__timeFilter(time)
GROUP BY 1, 2
ORDER BY 1, 2
"""

_LAST_UPLINK = latest("uplinks", "dev_eui", "d.dev_eui", "r.time, r.rssi, r.snr")
SILENT = f"""
SELECT d.dev_eui, d.name, d.codec, s.kind, d.site_id, d.report_interval_s, u.time AS last_uplink,
       round(extract(epoch FROM {to_time()} - u.time) / 3600, 1) AS silent_hours, u.rssi AS last_rssi
FROM devices d
LEFT JOIN sites s ON s.site_id = d.site_id
{_LAST_UPLINK} u ON true
WHERE u.time IS NULL OR u.time < {to_time()} - make_interval(secs => d.report_interval_s * {SILENT_FACTOR})
ORDER BY u.time NULLS FIRST, d.dev_eui
"""

RSSI = """
SELECT b::text AS rssi_dbm, n AS uplinks
FROM (
  SELECT (floor(rssi / 5) * 5)::int AS b, count(*) AS n
  FROM uplinks WHERE $__timeFilter(time) AND rssi IS NOT NULL
  GROUP BY 1
) x
ORDER BY b
"""

SNR = """
SELECT b::text AS snr_db, n AS uplinks
FROM (
  SELECT (floor(snr / 2) * 2)::int AS b, count(*) AS n
  FROM uplinks WHERE $__timeFilter(time) AND snr IS NOT NULL
  GROUP BY 1
) x
ORDER BY b
"""

DEAD_OVER_TIME = """
SELECT $__timeGroupAlias(received_at, $__interval), stage AS metric, count(*) AS dead_letters
FROM dead_letters
WHERE $__timeFilter(received_at)
GROUP BY 1, 2
ORDER BY 1, 2
"""

DEAD_BY_REASON = """
SELECT stage, reason, count(*) AS messages, count(DISTINCT dev_eui) AS devices, max(received_at) AS last_seen,
       (array_agg(topic ORDER BY received_at DESC))[1] AS last_topic
FROM dead_letters
WHERE $__timeFilter(received_at)
GROUP BY stage, reason
ORDER BY messages DESC, stage, reason
LIMIT 100
"""

GAPS_OVER_TIME = """
SELECT $__timeGroupAlias(time, $__interval), sum(missing) AS missing_frames, count(*) AS gaps
FROM fcnt_gaps
WHERE $__timeFilter(time)
GROUP BY 1
ORDER BY 1
"""

GAPS_BY_DEVICE = """
WITH g AS (
  SELECT dev_eui, count(*) AS gaps, sum(missing) AS missing, max(time) AS last_gap
  FROM fcnt_gaps WHERE $__timeFilter(time)
  GROUP BY dev_eui
  ORDER BY sum(missing) DESC, dev_eui
  LIMIT 50
), u AS (
  SELECT h.dev_eui, sum(h.uplinks) AS uplinks
  FROM uplinks_hourly h JOIN g ON g.dev_eui = h.dev_eui
  WHERE $__timeFilter(h.bucket)
  GROUP BY h.dev_eui
)
SELECT g.dev_eui, d.name, d.codec, g.gaps, g.missing AS missing_frames, coalesce(u.uplinks, 0) AS uplinks,
       round(100.0 * g.missing / nullif(g.missing + coalesce(u.uplinks, 0), 0), 2) AS loss_pct, g.last_gap
FROM g
LEFT JOIN u ON u.dev_eui = g.dev_eui
LEFT JOIN devices d ON d.dev_eui = g.dev_eui
ORDER BY missing_frames DESC, g.dev_eui
"""

# Alerts active at the range end (opened before it, not resolved before it), per rule; and the open ones listed.
ALERTS_BY_RULE = f"""
SELECT r.rule_id, count(a.alert_id) AS active
FROM alert_rules r
LEFT JOIN alerts a ON a.rule_id = r.rule_id AND a.opened_at <= {to_time()}
    AND (a.resolved_at IS NULL OR a.resolved_at > {to_time()})
GROUP BY r.rule_id
ORDER BY r.rule_id
"""
OPEN_ALERTS = """
SELECT a.alert_id, a.rule_id, a.severity, a.state, a.subject, a.site_id, a.message, a.opened_at
FROM alerts a
WHERE a.state <> 'resolved'
ORDER BY array_position(ARRAY['critical', 'warning', 'info'], a.severity), a.opened_at DESC
LIMIT 200
"""

_LAG = "extract(epoch FROM received_at - time)::float8"
INGEST_LAG = f"""
SELECT $__timeGroupAlias(time, $__interval),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY {_LAG}) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY {_LAG}) AS p95,
       max({_LAG}) AS max
FROM uplinks
WHERE $__timeFilter(time)
GROUP BY 1
ORDER BY 1
"""

# The TimescaleDB views do not exist on plain PostgreSQL, where naming them would fail at parse time. The query
# text is therefore chosen at run time and executed by query_to_xml(); on plain PostgreSQL it yields one row
# saying so. Read-only, no function to install.
_JOBS_TSDB = (
    "SELECT j.job_id, j.proc_name AS job, coalesce(j.hypertable_name, '''') AS target, "
    "coalesce(s.last_run_status, ''never run'') AS status, s.last_run_started_at AS last_run, "
    "s.total_failures AS failures, coalesce(s.next_start, j.next_start) AS next_start "
    "FROM timescaledb_information.jobs j "
    "LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id"
)
_JOBS_PLAIN = (
    "SELECT 0 AS job_id, ''none: plain PostgreSQL (timescaledb extension not installed)'' AS job, "
    "'''' AS target, ''n/a'' AS status"
)
JOBS = f"""
SELECT x.job_id, x.job, x.target, x.status, x.last_run, coalesce(x.failures, 0) AS failures, x.next_start
FROM xmltable('/table/row' PASSING query_to_xml(
  CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
    THEN '{_JOBS_TSDB}'
    ELSE '{_JOBS_PLAIN}'
  END, false, false, '')
  COLUMNS job_id integer, job text, target text, status text, last_run timestamptz, failures bigint,
          next_start timestamptz) AS x
ORDER BY (x.status = 'Failed') DESC, x.job_id
"""


def build(*, tz: str) -> dict[str, Any]:
    status = override(
        "status",
        custom__cellOptions={"type": "color-text"},
        color={"mode": "thresholds"},
        mappings=[
            {
                "type": "value",
                "options": {"Failed": {"color": "red", "index": 0}, "Success": {"color": "green", "index": 1}},
            }
        ],
    )
    panels = [
        stat("Devices", DEVICES, description="Devices in the registry."),
        stat(
            "Heard in the last hour",
            HEARD,
            description="Devices with at least one uplink in the hour before the range end.",
        ),
        stat("Uplinks", UPLINKS, description="Uplinks stored in the time range (hourly aggregate)."),
        stat(
            "Dead letters",
            DEAD,
            color=thresholds((None, "green"), (1, "orange")),
            description="Messages rejected in the time range (bad envelope, unknown device, undecodable ...).",
        ),
        timeseries(
            "Uplinks per minute",
            UPLINKS_PER_MINUTE,
            interval="1m",
            stacked=True,
            description="Stored uplinks per minute by network server (tts, chirpstack-v4, chirpstack-v3).",
        ),
        timeseries(
            "Ingest lag",
            INGEST_LAG,
            unit="s",
            interval="1m",
            description=(
                "Hub receive time minus the network server's receive time, median, 95th percentile and "
                "maximum. Negative values mean the clocks disagree."
            ),
        ),
        prometheus_timeseries(
            "Ingest queue and spool",
            [
                ("sum(stadtpuls_ingest_queue_depth)", "in memory"),
                ("sum(stadtpuls_ingest_spool_messages)", "spooled to disk"),
            ],
            w=24,
            h=7,
            description=(
                "Messages received but not yet committed: in the ingest's memory queue, and on its disk spool while "
                "the database is unreachable or slow. From the ingest's Prometheus metrics (STADTPULS_METRICS_PORT), "
                "so it needs the provisioned Prometheus datasource (the prometheus service of docker-compose.yml)."
            ),
        ),
        barchart(
            "Active alerts per rule",
            ALERTS_BY_RULE,
            x="rule_id",
            description="Alerts open or acknowledged at the range end, per rule (stadtpuls alerts).",
        ),
        table(
            "Active alerts",
            OPEN_ALERTS,
            description="Alerts not yet resolved, critical first; acknowledge them on /operator/alerts.",
        ),
        table(
            "Silent devices",
            SILENT,
            w=24,
            overrides=[override("silent_hours", unit="h"), override("last_rssi", unit="dBm")],
            description=(
                f"Devices without an uplink for longer than {SILENT_FACTOR:g} times their report interval before "
                "the range end, or never heard."
            ),
        ),
        barchart(
            "RSSI distribution",
            RSSI,
            x="rssi_dbm",
            description="Uplinks by best-gateway RSSI in 5 dBm steps (below -120 dBm is at the edge).",
        ),
        barchart(
            "SNR distribution",
            SNR,
            x="snr_db",
            description="Uplinks by best-gateway SNR in 2 dB steps (below -10 dB needs a high spreading factor).",
        ),
        timeseries(
            "Dead letters by stage",
            DEAD_OVER_TIME,
            bars=True,
            stacked=True,
            interval="5m",
            description="Rejected messages per interval by the stage that rejected them.",
        ),
        table(
            "Dead letters by reason",
            DEAD_BY_REASON,
            description="What was rejected in the time range and why; the raw messages are in dead_letters.",
        ),
        timeseries(
            "Frame-counter gaps",
            GAPS_OVER_TIME,
            bars=True,
            interval="5m",
            description="Missing frame counters (lost uplinks) detected per interval; joins are not gaps.",
        ),
        table(
            "Devices with missing frames",
            GAPS_BY_DEVICE,
            overrides=[override("loss_pct", unit="percent")],
            description="The 50 devices with the most missing frames in the range and their loss rate.",
        ),
        table(
            "TimescaleDB jobs",
            JOBS,
            w=24,
            overrides=[status],
            description=(
                "Compression, retention and continuous-aggregate refresh jobs from "
                "timescaledb_information.job_stats, failed ones first. On plain PostgreSQL there are none and "
                "the panel says so."
            ),
        ),
    ]
    variables = [constant("tz", tz, "reporting time zone (days and hours)")]
    return dashboard(
        UID,
        "stadtpuls - Fleet health",
        tz=tz,
        panels=panels,
        variables=variables,
        time_from="now-24h",
        description="Traffic, silent devices, radio quality, rejected messages, gaps and ingest lag.",
    )
