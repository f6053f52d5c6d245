-- Alert speed, part 3: a round reads the stored health rows without first scanning them for a replay.
--
-- device_health_asof (0018) and bin_full's floor (0022) asked whether any stored health row holds readings after
-- the round's time (a replay) with EXISTS (... last_time > now). In every round but a replay no row does, and the
-- planner, whose statistics of last_time lag behind the clock, answered it with a sequential scan of every health
-- row (5-10 ms at 20,000 devices, four times a round). The newest last_time is one probe of its index. The
-- stored rows of an ordinary round are then read with the rule's own conditions only (no last_time condition),
-- so battery_low and bin_full can use their indexes; a replay reads as before.
CREATE OR REPLACE FUNCTION device_health_asof(p_now timestamptz) RETURNS SETOF device_health
LANGUAGE sql STABLE AS $$
    SELECT * FROM device_health WHERE (SELECT max(last_time) FROM device_health) <= p_now
    UNION ALL
    SELECT * FROM device_health WHERE last_time <= p_now AND (SELECT max(last_time) FROM device_health) > p_now
    UNION ALL
    SELECT * FROM device_health_rows(ARRAY(SELECT dev_eui FROM device_health WHERE last_time > p_now), p_now)
    WHERE (SELECT max(last_time) FROM device_health) > p_now
$$;

-- The health rows of ``p_devs`` as in 0022, without building two arrays per day summary: the newest battery and
-- fill are found by their time (a day summary's battery_time and fill_time lie in its own UTC day, so each is
-- unique per device), and their values read from that day's row in the pass that sums the windows. The same rows
-- as before; a third less work per device in a refresh.
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
        SELECT dev_eui, max(last_time) AS last_time, max(battery_time) AS battery_time, max(fill_time) AS fill_time,
               max(day) FILTER (WHERE uplinks > 0) AS radio_day
        FROM dd GROUP BY dev_eui
    ), w AS (
        SELECT dd.dev_eui,
            max(dd.battery_v) FILTER (WHERE dd.battery_time = n.battery_time) AS battery_v,
            max(dd.battery_pct) FILTER (WHERE dd.battery_time = n.battery_time) AS battery_pct,
            max(dd.fill_pct) FILTER (WHERE dd.fill_time = n.fill_time) AS fill_pct,
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
            dd.fill_n > 0 AND dd.day >= (n.fill_time AT TIME ZONE 'UTC')::date - 2 AS fill_day,
            dd.uplinks > 0 AND dd.day > n.radio_day - 7 AS recent,
            dd.uplinks > 0 AND dd.day <= n.radio_day - 7 AND dd.day > n.radio_day - 14 AS before) f
        GROUP BY dd.dev_eui
    )
    SELECT n.dev_eui, n.last_time, n.battery_time, w.battery_v, w.battery_pct, n.fill_time, w.fill_pct, w.fill_n,
           w.fill_sx, w.fill_sy, w.fill_sxy, w.fill_sxx, n.radio_day, w.rssi_now, w.rssi_before, w.snr_now,
           w.snr_before, w.sf_now, w.sf_before, w.n_now, w.n_before
    FROM newest n JOIN w ON w.dev_eui = n.dev_eui
$$;

-- parking_stuck without aggregating every space's events of the window in every round (48 hours: 240,000 events at
-- 100,000 devices). A space is stuck when every event of the window (now - hours, now] has the same state; that
-- holds exactly when its newest event lies in the window and the newest event of the other state does not. So each
-- space keeps, per rule, its newest event (time, state, lot), the newest event of the other state and of another
-- lot within the window it was computed for, and its first event after that window (one stored ahead of the
-- clock): as the window moves on without new events, those times are only compared with its new start. A round
-- recomputes, by the (dev_eui, time) key, the spaces the ingest touched since the rule's last round
-- (device_state.updated_at, with the 15 s margin of the summary refresh) and those whose next event the clock has
-- reached; the first round, a changed window length, a replay of an earlier time and a gap longer than the window
-- recompute every space from the window's events.
CREATE TABLE IF NOT EXISTS parking_window_state (
    rule_id      text PRIMARY KEY REFERENCES alert_rules (rule_id) ON DELETE CASCADE,
    hours        integer NOT NULL,
    as_of        timestamptz NOT NULL,       -- the round's time the spaces were computed for
    refreshed_at timestamptz NOT NULL        -- when (the clock's time: device_state.updated_at is compared with it)
);
CREATE TABLE IF NOT EXISTS parking_window (
    rule_id   text NOT NULL REFERENCES parking_window_state (rule_id) ON DELETE CASCADE,
    dev_eui   text NOT NULL,
    last_time timestamptz,                   -- the newest event in the window (NULL: none, only a next one) ...
    occupied  boolean,                       -- ... its state
    lot_id    text,                          -- ... its lot
    flip_time timestamptz,                   -- the newest event of the other state within the window (else NULL)
    lot_time  timestamptz,                   -- the newest event of another lot within the window (else NULL)
    next_time timestamptz,                   -- the first event after as_of (else NULL)
    PRIMARY KEY (rule_id, dev_eui)
);
CREATE INDEX IF NOT EXISTS parking_window_next_idx ON parking_window (rule_id, next_time) WHERE next_time IS NOT NULL;

-- The rows of the spaces ``p_devs`` as of ``p_now``: each by its key. A space without events in the window or
-- after it has none.
CREATE OR REPLACE FUNCTION parking_window_rows(p_devs text[], p_hours integer, p_now timestamptz)
RETURNS TABLE (dev_eui text, last_time timestamptz, occupied boolean, lot_id text, flip_time timestamptz,
               lot_time timestamptz, next_time timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT d.dev_eui, l.time, l.occupied, l.lot_id,
           (SELECT max(e.time) FROM parking_events e
            WHERE e.dev_eui = d.dev_eui AND e.time > p_now - make_interval(hours => p_hours) AND e.time <= p_now
              AND e.occupied <> l.occupied),
           (SELECT max(e.time) FROM parking_events e
            WHERE e.dev_eui = d.dev_eui AND e.time > p_now - make_interval(hours => p_hours) AND e.time <= p_now
              AND e.lot_id IS DISTINCT FROM l.lot_id),
           x.next_time
    FROM unnest(p_devs) AS d(dev_eui)
    LEFT JOIN LATERAL (SELECT e.time, e.occupied, e.lot_id FROM parking_events e
                       WHERE e.dev_eui = d.dev_eui AND e.time > p_now - make_interval(hours => p_hours)
                         AND e.time <= p_now
                       ORDER BY e.time DESC LIMIT 1) l ON true
    CROSS JOIN LATERAL (SELECT min(e.time) AS next_time FROM parking_events e
                        WHERE e.dev_eui = d.dev_eui AND e.time > p_now) x
    WHERE l.time IS NOT NULL OR x.next_time IS NOT NULL
$$;

-- The candidates of the parking_stuck rule ``p_rule`` at ``p_now`` (the columns of a kind's candidates), its spaces
-- brought up to date first.
CREATE OR REPLACE FUNCTION parking_stuck_candidates(p_rule text, p_hours integer, p_min_changing double precision,
                                                    p_now timestamptz)
RETURNS TABLE (subject text, dev_eui text, value double precision, firing boolean, message text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    st parking_window_state;
    since timestamptz := p_now - make_interval(hours => p_hours);
    started timestamptz := clock_timestamp();  -- before the events are read (compared with device_state.updated_at)
    devs text[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('parking_window:' || p_rule));
    SELECT * INTO st FROM parking_window_state s WHERE s.rule_id = p_rule;
    IF st.rule_id IS NULL OR st.hours <> p_hours OR p_now < st.as_of OR st.as_of < since THEN
        DELETE FROM parking_window_state s WHERE s.rule_id = p_rule;
        INSERT INTO parking_window_state VALUES (p_rule, p_hours, p_now, started);
        devs := ARRAY(SELECT DISTINCT e.dev_eui FROM parking_events e WHERE e.time > since);
    ELSE
        devs := ARRAY(
            SELECT s.dev_eui FROM device_state s WHERE s.updated_at >= st.refreshed_at - interval '15 seconds'
            UNION
            SELECT w.dev_eui FROM parking_window w WHERE w.rule_id = p_rule AND w.next_time <= p_now);
        DELETE FROM parking_window w WHERE w.rule_id = p_rule AND w.dev_eui = ANY(devs);
        UPDATE parking_window_state s SET as_of = p_now, refreshed_at = started WHERE s.rule_id = p_rule;
    END IF;
    INSERT INTO parking_window SELECT p_rule, r.* FROM parking_window_rows(devs, p_hours, p_now) r;
    RETURN QUERY
    WITH w AS (
        SELECT p.dev_eui, p.occupied, coalesce(p.flip_time > since, false) AS changed,
               CASE WHEN p.lot_time > since  -- another lot within the window: the greatest, as the events say
                    THEN (SELECT max(e.lot_id) FROM parking_events e
                          WHERE e.dev_eui = p.dev_eui AND e.time > since AND e.time <= p_now)
                    ELSE p.lot_id END AS lot_id
        FROM parking_window p WHERE p.rule_id = p_rule AND p.last_time > since
    ), lots AS (
        SELECT w.lot_id, count(*) FILTER (WHERE w.changed) AS changing FROM w GROUP BY w.lot_id
    )
    SELECT w.dev_eui, w.dev_eui, lots.changing::double precision, true,
           format('reports %s for %s h while %s spaces of lot %s changed', CASE WHEN w.occupied THEN 'occupied'
                  ELSE 'free' END, p_hours, lots.changing, w.lot_id)
    FROM w JOIN lots ON lots.lot_id = w.lot_id
    WHERE NOT w.changed AND lots.changing >= p_min_changing;
END $$;

GRANT SELECT, INSERT, UPDATE, DELETE ON parking_window_state, parking_window TO stadtpuls_alerts;
