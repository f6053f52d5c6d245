-- Alert speed: what lets a round's rules look at the few devices that can be candidates instead of every device.
-- Both are plain tables in both modes.

-- frame_loss: the devices that joined within the window. The writer sets last_join only at a join (otherwise to
-- the value it had), so its ordinary updates of device_state stay HOT.
CREATE INDEX IF NOT EXISTS device_state_last_join_idx ON device_state (last_join) WHERE last_join IS NOT NULL;
-- frame_loss: the gaps within the window.
CREATE INDEX IF NOT EXISTS fcnt_gaps_time_idx ON fcnt_gaps (time);

-- battery_low: the devices near a limit, instead of every health row.
CREATE INDEX IF NOT EXISTS device_health_battery_v_idx ON device_health (battery_v);
CREATE INDEX IF NOT EXISTS device_health_battery_pct_idx ON device_health (battery_pct);

-- The health rows as they stood at ``p_now`` (0015), with the recomputation from the day summaries skipped
-- outright when no device's stored row holds readings after ``p_now`` (every round but a replay's): a one-time
-- filter, so the planner neither plans nor calls device_health_rows.
CREATE OR REPLACE FUNCTION device_health_asof(p_now timestamptz) RETURNS SETOF device_health
LANGUAGE sql STABLE AS $$
    SELECT * FROM device_health WHERE last_time <= p_now
    UNION ALL
    SELECT * FROM device_health_rows(ARRAY(SELECT dev_eui FROM device_health WHERE last_time > p_now), p_now)
    WHERE EXISTS (SELECT 1 FROM device_health WHERE last_time > p_now)
$$;

-- As in 0015, with the newest-reading lookup made only for the devices that need it (no summary yet, or no state):
-- OFFSET 0 keeps the condition a one-time filter of the lookup instead of a filter applied after it.
CREATE OR REPLACE FUNCTION device_daily_update(p_devs text[], p_max_days integer DEFAULT 60) RETURNS integer
LANGUAGE sql AS $$
    WITH span AS (
        SELECT d.dev_eui, m.day AS summarised, coalesce(r.first_time, s.last_time) AS first_time,
               coalesce(r.last_time, s.last_time) AS last_time
        FROM unnest(p_devs) AS d(dev_eui)
        LEFT JOIN device_state s ON s.dev_eui = d.dev_eui
        LEFT JOIN LATERAL (SELECT max(dd.day) AS day FROM device_daily dd WHERE dd.dev_eui = d.dev_eui) m ON true
        LEFT JOIN LATERAL (SELECT * FROM device_newest_reading(ARRAY[d.dev_eui])
                           WHERE m.day IS NULL OR s.last_time IS NULL OFFSET 0) r ON true
    )
    SELECT coalesce(device_daily_compute(
        array_agg(dev_eui),
        array_agg(greatest(coalesce(summarised, (first_time AT TIME ZONE 'UTC')::date),
                           (last_time AT TIME ZONE 'UTC')::date - p_max_days)),
        array_agg((last_time AT TIME ZONE 'UTC')::date)), 0)
    FROM span WHERE last_time IS NOT NULL
$$;

-- The device_state.updated_at each device's summaries were last brought up to date for (by a refresh that saw
-- that state). The refresh takes the devices touched since the last one less its margin, as before, but leaves out
-- those whose state it already summarised: a device touched just before the last refresh is not summarised again
-- in the next one, and one whose batch committed after the last refresh started is (its updated_at differs).
CREATE TABLE IF NOT EXISTS device_summary_seen (
    dev_eui    text PRIMARY KEY,
    updated_at timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON device_summary_seen TO stadtpuls_alerts;

CREATE OR REPLACE FUNCTION device_daily_refresh(p_margin interval DEFAULT '15 seconds', p_keep_days integer DEFAULT 60)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    since timestamptz;
    started timestamptz := now();
    devs text[];
    seen timestamptz[];
    n integer;
BEGIN
    -- one refresh at a time (two alerts services, or a summarize command during a round)
    PERFORM pg_advisory_xact_lock(hashtext('device_daily_refresh'));
    SELECT refreshed_at - p_margin INTO since FROM alert_summary_state FOR UPDATE;
    IF since IS NULL THEN  -- the first refresh: every device, the 15 days the rules read
        SELECT array_agg(d.dev_eui), array_agg(s.updated_at) INTO devs, seen
        FROM devices d LEFT JOIN device_state s ON s.dev_eui = d.dev_eui;
        n := device_daily_update(coalesce(devs, '{}'), 15);
    ELSE
        SELECT array_agg(s.dev_eui), array_agg(s.updated_at) INTO devs, seen
        FROM device_state s
        WHERE s.updated_at >= since  -- then looked up by key (a subquery, never a join with every row)
          AND (SELECT x.updated_at FROM device_summary_seen x WHERE x.dev_eui = s.dev_eui) IS DISTINCT FROM s.updated_at;
        n := device_daily_update(coalesce(devs, '{}'));
    END IF;
    -- the states read before the summaries were made (a batch committed meanwhile is summarised next time)
    INSERT INTO device_summary_seen (dev_eui, updated_at)
    SELECT dev_eui, updated_at FROM unnest(devs, seen) AS u(dev_eui, updated_at) WHERE updated_at IS NOT NULL
    ON CONFLICT (dev_eui) DO UPDATE SET updated_at = EXCLUDED.updated_at;
    INSERT INTO alert_summary_state (one, refreshed_at) VALUES (true, started)
    ON CONFLICT (one) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at;
    DELETE FROM device_daily WHERE day < (SELECT max(day) FROM device_daily) - p_keep_days;
    RETURN n;
END $$;

-- device_silent: the shortest report interval of any device.
CREATE INDEX IF NOT EXISTS devices_report_interval_idx ON devices (report_interval_s);
