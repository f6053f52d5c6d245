-- Alert speed, part 2: bin_full reads only the health rows whose fill can make a candidate, and the summary refresh
-- does only the work of the devices it touches. Plain tables and indexes in both modes.

-- A bin's fill trend (% per hour) from the sums in its health row: the least-squares slope over the newest fill's
-- day and the two before, or NULL without one (fewer than two distinct times). bin_full computes its prediction
-- from the same sums; this is what its lower bound on a candidate's fill reads, by the index below.
CREATE OR REPLACE FUNCTION fill_rate(n integer, sx double precision, sy double precision, sxy double precision,
                                     sxx double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN n * sxx - sx * sx > 0 THEN (n * sxy - sx * sy) / (n * sxx - sx * sx) END
$$;

-- bin_full: the steepest rise of any bin (its largest value), and the bins whose fill lies above a floor.
CREATE INDEX IF NOT EXISTS device_health_fill_rate_idx
    ON device_health (fill_rate(fill_n, fill_sx, fill_sy, fill_sxy, fill_sxx));
CREATE INDEX IF NOT EXISTS device_health_fill_pct_idx ON device_health (fill_pct);
-- bin_full: the lowest threshold of any site.
CREATE INDEX IF NOT EXISTS sites_threshold_pct_idx ON sites (threshold_pct);

-- The summary refresh, by key only. In 0015 the touched devices' summaries were found by a join of the device
-- list with device_daily, which the planner made a hash join over every device's summaries (a sequential scan of
-- device_daily, twice per refresh: 0.3 s each for 20,000 devices, growing with the town while 112 devices were
-- touched). Here each device's rows are a LATERAL subquery kept apart by OFFSET 0, so they can only be looked up by
-- the primary key (dev_eui, day), device by device: a refresh reads the rows of the devices it touches.

-- Recompute the days [lo, hi] of each device; returns the device-days written (as 0015).
CREATE OR REPLACE FUNCTION device_daily_compute(p_devs text[], p_lo date[], p_hi date[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM device_daily dd
    USING (SELECT k.dev_eui, k.day FROM unnest(p_devs, p_lo, p_hi) AS s(dev_eui, lo, hi)
           CROSS JOIN LATERAL (SELECT dev_eui, day FROM device_daily k
                               WHERE k.dev_eui = s.dev_eui AND k.day BETWEEN s.lo AND s.hi OFFSET 0) k) z
    WHERE dd.dev_eui = z.dev_eui AND dd.day = z.day;
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

-- The health rows of ``p_devs`` from their day summaries as they stood at ``p_now`` (as 0015, by key).
CREATE OR REPLACE FUNCTION device_health_rows(p_devs text[], p_now timestamptz DEFAULT 'infinity')
RETURNS SETOF device_health LANGUAGE sql STABLE AS $$
    WITH dd AS (  -- by the key, device by device
        SELECT dd.* FROM unnest(p_devs) AS d(dev_eui)
        CROSS JOIN LATERAL (SELECT * FROM device_daily k WHERE k.dev_eui = d.dev_eui AND k.last_time <= p_now
                            OFFSET 0) dd
        UNION ALL
        SELECT r.* FROM (
            SELECT array_agg(dd.dev_eui) AS devs, array_agg(dd.day) AS days
            FROM unnest(p_devs) AS d(dev_eui)
            CROSS JOIN LATERAL (SELECT k.dev_eui, k.day FROM device_daily k
                                WHERE k.dev_eui = d.dev_eui AND k.day <= (p_now AT TIME ZONE 'UTC')::date
                                  AND k.last_time > p_now OFFSET 0) dd
            WHERE p_now < 'infinity'
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
