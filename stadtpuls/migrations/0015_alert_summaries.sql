-- Alert summaries: one row per device and UTC day with what the slow alert rules need (radio figures, battery,
-- bin fill and the sums of its trend), so that a rule reads a few rows per device instead of days of readings.
-- The alerts service keeps it current at the start of every round (``device_daily_refresh``): the devices the
-- ingest touched since the last refresh (``device_state.updated_at``, which the writer sets in every batch) get
-- their days recomputed from their newest summarised day to their newest reading. The ingest does nothing more
-- than before. Readings that arrive for a day before a device's newest summarised day (a backfill) are summarised by ``stadtpuls alerts summarize --days N`` (``device_daily_build``).
-- Plain tables in both modes (a continuous aggregate cannot hold percentiles over several source tables, nor
-- the per-device health row built from them).
-- The alerts service connects as its own role, ``stadtpuls_alerts`` (LOGIN and password from ``migrate`` with
-- STADTPULS_ALERTS_DB_PASSWORD), and may do only what a round needs.

CREATE TABLE IF NOT EXISTS device_daily (
    dev_eui        text NOT NULL,
    day            date NOT NULL,              -- UTC day
    last_time      timestamptz NOT NULL,       -- the day's newest reading (any table) summarised here
    uplinks        integer NOT NULL DEFAULT 0,
    rssi_p50       real,                       -- the day's median RSSI (dBm) and SNR (dB), and their 10th percentile
    rssi_p10       real,
    snr_p50        real,
    snr_p10        real,
    sf_sum         bigint,                     -- sum and count of spreading factors (a window's mean is exact)
    sf_n           integer,
    sf_max         smallint,
    battery_time   timestamptz,                -- the day's last battery reading (any reading table) ...
    battery_v      real,
    battery_pct    real,
    battery_v_min  real,                       -- ... and its lowest voltage
    fill_time      timestamptz,                -- the day's last bin fill ...
    fill_pct       real,
    fill_n         integer,                    -- ... and the sums of its least-squares trend, x in hours since
    fill_sx        double precision,           -- the epoch (see device_daily_compute), y in percent
    fill_sy        double precision,
    fill_sxy       double precision,
    fill_sxx       double precision,
    PRIMARY KEY (dev_eui, day)
);
CREATE INDEX IF NOT EXISTS device_daily_day_idx ON device_daily (day);

-- What the rules read: one row per device, from its day summaries (device_health_rows below). Radio: the median
-- of the daily medians of the 7 days ending with the device's newest day with uplinks (radio_day) against the 7
-- days before, and the mean spreading factor of each; battery: the newest reading with one; bin fill: the newest
-- fill and the sums of its trend over its day and the two before.
CREATE TABLE IF NOT EXISTS device_health (
    dev_eui       text PRIMARY KEY,
    last_time     timestamptz NOT NULL,       -- the newest reading summarised
    battery_time  timestamptz,
    battery_v     real,
    battery_pct   real,
    fill_time     timestamptz,
    fill_pct      real,
    fill_n        integer,
    fill_sx       double precision,
    fill_sy       double precision,
    fill_sxy      double precision,
    fill_sxx      double precision,
    radio_day     date,
    rssi_now      real,
    rssi_before   real,
    snr_now       real,
    snr_before    real,
    sf_now        real,
    sf_before     real,
    n_now         integer,
    n_before      integer
);
CREATE INDEX IF NOT EXISTS device_health_last_time_idx ON device_health (last_time);

-- When the last refresh started (one row): the next takes the devices touched since, less a margin (15 s) for
-- batches that were being written meanwhile (a batch's updated_at is its transaction's start). A device whose
-- batch committed later than that is summarised when it is touched again (from its newest summarised day on).
CREATE TABLE IF NOT EXISTS alert_summary_state (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    refreshed_at timestamptz NOT NULL
);

-- The summaries of the days [lo, hi] of each device, from the readings up to ``p_until`` (a day summarised before
-- its end: a round that replays a past time reads what was stored by then).
CREATE OR REPLACE FUNCTION device_daily_rows(p_devs text[], p_lo date[], p_hi date[],
                                             p_until timestamptz DEFAULT 'infinity')
RETURNS SETOF device_daily LANGUAGE sql STABLE SET work_mem = '64MB' AS $$
    WITH span AS (
        SELECT d AS dev_eui, l::timestamp AT TIME ZONE 'UTC' AS t0,
               least((h + 1)::timestamp AT TIME ZONE 'UTC', p_until + interval '1 microsecond') AS t1
        FROM unnest(p_devs, p_lo, p_hi) AS u(d, l, h) WHERE l <= h
    ), up AS (
        SELECT u.dev_eui, (u.time AT TIME ZONE 'UTC')::date AS day, max(u.time) AS last_time,
               count(*)::int AS uplinks,
               percentile_cont(ARRAY[0.5, 0.1]) WITHIN GROUP (ORDER BY u.rssi) AS rssi_p,  -- one sort for both
               percentile_cont(ARRAY[0.5, 0.1]) WITHIN GROUP (ORDER BY u.snr) AS snr_p,
               sum(u.sf) AS sf_sum, count(u.sf)::int AS sf_n, max(u.sf) AS sf_max
        FROM span s JOIN uplinks u ON u.dev_eui = s.dev_eui AND u.time >= s.t0 AND u.time < s.t1
        GROUP BY 1, 2
    ), readings AS (
        SELECT r.dev_eui, (r.time AT TIME ZONE 'UTC')::date AS day, r.time, r.battery_v::double precision,
               r.battery_pct::double precision, r.fill_pct::double precision,
               extract(epoch FROM r.time)::double precision / 3600 AS x
        FROM span s CROSS JOIN LATERAL (
            SELECT time, dev_eui, battery_v, battery_pct, fill_pct FROM bin_levels b
            WHERE b.dev_eui = s.dev_eui AND b.time >= s.t0 AND b.time < s.t1
            UNION ALL
            SELECT time, dev_eui, battery_v, NULL, NULL FROM parking_events p
            WHERE p.dev_eui = s.dev_eui AND p.time >= s.t0 AND p.time < s.t1
            UNION ALL
            SELECT time, dev_eui, battery_v, NULL, NULL FROM environment_readings e
            WHERE e.dev_eui = s.dev_eui AND e.time >= s.t0 AND e.time < s.t1
        ) r
    ), rd AS (  -- the last value of a day as the greatest [time, value] pair: no sort per day
        SELECT dev_eui, day, max(time) AS last_time,
               max(time) FILTER (WHERE battery_v IS NOT NULL OR battery_pct IS NOT NULL) AS battery_time,
               max(ARRAY[x, battery_v]) FILTER (WHERE battery_v IS NOT NULL OR battery_pct IS NOT NULL) AS battery_v,
               max(ARRAY[x, battery_pct]) FILTER (WHERE battery_v IS NOT NULL OR battery_pct IS NOT NULL) AS battery_pct,
               min(battery_v) AS battery_v_min,
               max(time) FILTER (WHERE fill_pct IS NOT NULL) AS fill_time,
               max(ARRAY[x, fill_pct]) FILTER (WHERE fill_pct IS NOT NULL) AS fill_pct,
               count(fill_pct)::int AS fill_n, sum(x) FILTER (WHERE fill_pct IS NOT NULL) AS fill_sx,
               sum(fill_pct) AS fill_sy, sum(x * fill_pct) AS fill_sxy,
               sum(x * x) FILTER (WHERE fill_pct IS NOT NULL) AS fill_sxx
        FROM readings GROUP BY 1, 2
    )
    SELECT coalesce(up.dev_eui, rd.dev_eui), coalesce(up.day, rd.day), greatest(up.last_time, rd.last_time),
           coalesce(up.uplinks, 0), up.rssi_p[1], up.rssi_p[2], up.snr_p[1], up.snr_p[2], up.sf_sum, up.sf_n,
           up.sf_max, rd.battery_time, rd.battery_v[2], rd.battery_pct[2], rd.battery_v_min, rd.fill_time,
           rd.fill_pct[2],
           nullif(rd.fill_n, 0), rd.fill_sx, rd.fill_sy, rd.fill_sxy, rd.fill_sxx
    FROM up FULL JOIN rd ON rd.dev_eui = up.dev_eui AND rd.day = up.day
$$;

-- Recompute the days [lo, hi] of each device; returns the device-days written.
CREATE OR REPLACE FUNCTION device_daily_compute(p_devs text[], p_lo date[], p_hi date[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM device_daily dd USING unnest(p_devs, p_lo, p_hi) AS s(dev_eui, lo, hi)
    WHERE dd.dev_eui = ANY(p_devs) AND dd.dev_eui = s.dev_eui AND dd.day BETWEEN s.lo AND s.hi;  -- by the key
    INSERT INTO device_daily SELECT * FROM device_daily_rows(p_devs, p_lo, p_hi);
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO device_health SELECT * FROM device_health_rows(p_devs)
    ON CONFLICT (dev_eui) DO UPDATE SET
        last_time = EXCLUDED.last_time, battery_time = EXCLUDED.battery_time, battery_v = EXCLUDED.battery_v, battery_pct = EXCLUDED.battery_pct,
        fill_time = EXCLUDED.fill_time, fill_pct = EXCLUDED.fill_pct, fill_n = EXCLUDED.fill_n, fill_sx = EXCLUDED.fill_sx,
        fill_sy = EXCLUDED.fill_sy, fill_sxy = EXCLUDED.fill_sxy, fill_sxx = EXCLUDED.fill_sxx, radio_day = EXCLUDED.radio_day,
        rssi_now = EXCLUDED.rssi_now, rssi_before = EXCLUDED.rssi_before, snr_now = EXCLUDED.snr_now, snr_before = EXCLUDED.snr_before,
        sf_now = EXCLUDED.sf_now, sf_before = EXCLUDED.sf_before, n_now = EXCLUDED.n_now, n_before = EXCLUDED.n_before;
    RETURN n;
END $$;

-- The health rows of ``p_devs`` from their day summaries as they stood at ``p_now``.
CREATE OR REPLACE FUNCTION device_health_rows(p_devs text[], p_now timestamptz DEFAULT 'infinity')
RETURNS SETOF device_health LANGUAGE sql STABLE AS $$
    WITH dd AS (  -- by the key, device by device (the planner cannot see how few they are)
        SELECT dd.* FROM unnest(p_devs) AS d(dev_eui) JOIN device_daily dd ON dd.dev_eui = d.dev_eui
        WHERE dd.last_time <= p_now
        UNION ALL
        SELECT r.* FROM (
            SELECT array_agg(dd.dev_eui) AS devs, array_agg(dd.day) AS days
            FROM unnest(p_devs) AS d(dev_eui) JOIN device_daily dd ON dd.dev_eui = d.dev_eui
            WHERE p_now < 'infinity' AND dd.day <= (p_now AT TIME ZONE 'UTC')::date AND dd.last_time > p_now
        ) late CROSS JOIN LATERAL device_daily_rows(late.devs, late.days, late.days, p_now) r
        WHERE late.devs IS NOT NULL
    ), newest AS (
        SELECT dev_eui, max(last_time) AS last_time,
               max(ARRAY[extract(epoch FROM battery_time)::float8, battery_v, battery_pct]) FILTER (WHERE battery_time IS NOT NULL)
                   AS battery,
               max(ARRAY[extract(epoch FROM fill_time)::float8, fill_pct, extract(epoch FROM day::timestamp)::float8])
                   FILTER (WHERE fill_time IS NOT NULL) AS fill,
               max(day) FILTER (WHERE uplinks > 0) AS radio_day
        FROM dd GROUP BY dev_eui
    ), w AS (
        SELECT dd.dev_eui,
            sum(dd.fill_n) FILTER (WHERE fill_day) AS fill_n, sum(dd.fill_sx) FILTER (WHERE fill_day) AS fill_sx,
            sum(dd.fill_sy) FILTER (WHERE fill_day) AS fill_sy, sum(dd.fill_sxy) FILTER (WHERE fill_day) AS fill_sxy,
            sum(dd.fill_sxx) FILTER (WHERE fill_day) AS fill_sxx,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY dd.rssi_p50) FILTER (WHERE recent) AS rssi_now,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY dd.rssi_p50) FILTER (WHERE before) AS rssi_before,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY dd.snr_p50) FILTER (WHERE recent) AS snr_now,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY dd.snr_p50) FILTER (WHERE before) AS snr_before,
            sum(dd.sf_sum) FILTER (WHERE recent)::double precision / nullif(sum(dd.sf_n) FILTER (WHERE recent), 0)
                AS sf_now,
            sum(dd.sf_sum) FILTER (WHERE before)::double precision / nullif(sum(dd.sf_n) FILTER (WHERE before), 0)
                AS sf_before,
            coalesce(sum(dd.uplinks) FILTER (WHERE recent), 0)::int AS n_now,
            coalesce(sum(dd.uplinks) FILTER (WHERE before), 0)::int AS n_before
        FROM dd JOIN newest n ON n.dev_eui = dd.dev_eui
        CROSS JOIN LATERAL (SELECT
            dd.fill_n > 0 AND dd.day >= (to_timestamp(n.fill[3]) AT TIME ZONE 'UTC')::date - 2 AS fill_day,
            dd.uplinks > 0 AND dd.day > n.radio_day - 7 AS recent,
            dd.uplinks > 0 AND dd.day <= n.radio_day - 7 AND dd.day > n.radio_day - 14 AS before) f
        GROUP BY dd.dev_eui
    )
    SELECT n.dev_eui, n.last_time, to_timestamp(n.battery[1]), n.battery[2], n.battery[3], to_timestamp(n.fill[1]),
           n.fill[2], w.fill_n, w.fill_sx, w.fill_sy, w.fill_sxy, w.fill_sxx, n.radio_day, w.rssi_now, w.rssi_before,
           w.snr_now, w.snr_before, w.sf_now, w.sf_before, w.n_now, w.n_before
    FROM newest n JOIN w ON w.dev_eui = n.dev_eui
$$;

-- Every device's health row as it stood at ``p_now``: the stored row, or, for a device whose stored row holds
-- readings after ``p_now`` (a replay of a past time), one computed from its summaries as they stood then.
CREATE OR REPLACE FUNCTION device_health_asof(p_now timestamptz) RETURNS SETOF device_health
LANGUAGE sql STABLE AS $$
    SELECT * FROM device_health WHERE last_time <= p_now
    UNION ALL
    SELECT * FROM device_health_rows(ARRAY(SELECT dev_eui FROM device_health WHERE last_time > p_now), p_now)
$$;

-- The newest reading of each of ``p_devs`` (any reading table), from the (dev_eui, time) indexes.
CREATE OR REPLACE FUNCTION device_newest_reading(p_devs text[])
RETURNS TABLE (dev_eui text, first_time timestamptz, last_time timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT d, least(u.f, b.f, p.f, e.f), greatest(u.l, b.l, p.l, e.l)
    FROM unnest(p_devs) AS d
    CROSS JOIN LATERAL (SELECT min(time) AS f, max(time) AS l FROM uplinks WHERE uplinks.dev_eui = d) u
    CROSS JOIN LATERAL (SELECT min(time) AS f, max(time) AS l FROM bin_levels WHERE bin_levels.dev_eui = d) b
    CROSS JOIN LATERAL (SELECT min(time) AS f, max(time) AS l FROM parking_events
                        WHERE parking_events.dev_eui = d) p
    CROSS JOIN LATERAL (SELECT min(time) AS f, max(time) AS l FROM environment_readings
                        WHERE environment_readings.dev_eui = d) e
$$;

-- Summarise the devices ``p_devs`` from their newest summarised day (or their first reading) to
-- their newest reading (``device_state.last_time``, or looked up for a device without either), at most
-- ``p_max_days`` days back from it; returns the device-days written.
CREATE OR REPLACE FUNCTION device_daily_update(p_devs text[], p_max_days integer DEFAULT 60) RETURNS integer
LANGUAGE sql AS $$
    WITH span AS (
        SELECT d.dev_eui, m.day AS summarised, coalesce(r.first_time, s.last_time) AS first_time,
               coalesce(r.last_time, s.last_time) AS last_time
        FROM unnest(p_devs) AS d(dev_eui)
        LEFT JOIN device_state s ON s.dev_eui = d.dev_eui
        LEFT JOIN LATERAL (SELECT max(dd.day) AS day FROM device_daily dd WHERE dd.dev_eui = d.dev_eui) m ON true
        LEFT JOIN LATERAL (SELECT * FROM device_newest_reading(ARRAY[d.dev_eui])
                           WHERE m.day IS NULL OR s.last_time IS NULL) r ON true
    )
    SELECT coalesce(device_daily_compute(
        array_agg(dev_eui),
        array_agg(greatest(coalesce(summarised, (first_time AT TIME ZONE 'UTC')::date),
                           (last_time AT TIME ZONE 'UTC')::date - p_max_days)),
        array_agg((last_time AT TIME ZONE 'UTC')::date)), 0)
    FROM span WHERE last_time IS NOT NULL
$$;

-- One refresh: the devices touched since the last one (less ``p_margin``), their days updated; the summaries
-- older than ``p_keep_days`` before the newest day deleted. Returns the device-days written.
CREATE OR REPLACE FUNCTION device_daily_refresh(p_margin interval DEFAULT '15 seconds', p_keep_days integer DEFAULT 60)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    since timestamptz;
    started timestamptz := now();
    n integer;
BEGIN
    -- one refresh at a time (two alerts services, or a summarize command during a round)
    PERFORM pg_advisory_xact_lock(hashtext('device_daily_refresh'));
    SELECT refreshed_at - p_margin INTO since FROM alert_summary_state FOR UPDATE;
    IF since IS NULL THEN  -- the first refresh: every device, the 15 days the rules read
        n := device_daily_update(ARRAY(SELECT d.dev_eui FROM devices d), 15);
    ELSE
        n := device_daily_update(ARRAY(SELECT s.dev_eui FROM device_state s WHERE s.updated_at >= since));
    END IF;
    INSERT INTO alert_summary_state (one, refreshed_at) VALUES (true, started)
    ON CONFLICT (one) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at;
    DELETE FROM device_daily WHERE day < (SELECT max(day) FROM device_daily) - p_keep_days;
    RETURN n;
END $$;

-- Rebuild the summaries of every device for the days [p_from, p_to] (a backfill, or the first build).
CREATE OR REPLACE FUNCTION device_daily_build(p_from date, p_to date) RETURNS integer LANGUAGE sql AS $$
    SELECT device_daily_compute(array_agg(dev_eui), array_fill(p_from, ARRAY[count(*)::int]),
                                array_fill(p_to, ARRAY[count(*)::int]))
    FROM devices
$$;

-- The ingest's state as its /health answered the alerts service (STADTPULS_ALERTS_INGEST_HEALTH_URL), one row per
-- network-server source and one for the ingest itself (source ''): the hub rules spool_in_use and
-- source_disconnected read it. Replaced at every round.
CREATE TABLE IF NOT EXISTS ingest_status (
    source          text PRIMARY KEY,           -- a source's name, or '' for the ingest as a whole
    reachable       boolean NOT NULL,           -- the ingest answered
    connected       boolean,                    -- the source's MQTT connection
    spool_messages  bigint,                     -- messages kept in the spool, not yet written
    spool_bytes     bigint,
    error           text,
    checked_at      timestamptz NOT NULL
);

-- the summaries of what is stored already, and the planner's statistics of them (lookups by device, not scans)
SELECT device_daily_refresh();
ANALYZE device_daily, device_health;

-- The alerts service's role: reads the registry and the readings its rules watch, keeps the summaries, writes the
-- alerts, their events and the outbox (delivery state); never api_keys, never the registry or the readings.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stadtpuls_alerts') THEN
        BEGIN
            CREATE ROLE stadtpuls_alerts NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database on the same server
        END;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO stadtpuls_alerts;
GRANT SELECT ON sites, devices, device_state, uplinks, bin_levels, parking_events, environment_readings, fcnt_gaps,
    dead_letters TO stadtpuls_alerts;
GRANT SELECT, INSERT, UPDATE, DELETE ON device_daily, device_health TO stadtpuls_alerts;
GRANT SELECT, INSERT, UPDATE ON alert_summary_state TO stadtpuls_alerts;
GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_status TO stadtpuls_alerts;
GRANT SELECT, INSERT, UPDATE ON alert_rules TO stadtpuls_alerts;  -- the default rules at start; evaluated_at
GRANT SELECT ON notification_channels TO stadtpuls_alerts;
GRANT SELECT, INSERT, UPDATE ON alerts, alert_events, notifications TO stadtpuls_alerts;
