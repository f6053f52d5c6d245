-- History rollups (both modes; the mode's own file follows): time-weighted occupancy of parking lots and
-- passengers on board of lines, per hour of the reporting time zone, kept current by the ingest: the writer
-- queues the span of every batch per lot and line in ``rollup_dirty`` (one cheap insert in its transaction), and
-- the ingest's rollup job (``rollups_refresh_pending()``, every STADTPULS_ROLLUP_INTERVAL seconds) takes the queue,
-- merges the spans per lot and line and refreshes them. Readers treat queued spans as not rolled up yet.
--
-- A reading holds from its time until the next reading of the same space (vehicle), or until it goes stale,
-- @SILENT_FACTOR@ times its device's report interval later; after that the space (vehicle) is unknown. Every
-- quantity is a step function of time: rollups integrate it (space-seconds, passenger-seconds), keep its value
-- at the bucket's end and its minimum inside the bucket. Continuous aggregates cannot carry a state from one
-- bucket into the next, so the hourly rollups are tables that the writer refreshes for the hours a batch can
-- change ([first reading, last reading + hold)); late and backfilled readings are covered the same way.

-- The start of the bucket of ``p_width`` (15 minutes, 1 hour, 1 day) holding ``p_time``, aligned in ``p_tz``.
CREATE OR REPLACE FUNCTION rollup_floor(p_time timestamptz, p_width interval, p_tz text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_width >= interval '1 day' THEN date_trunc('day', p_time, p_tz)
        WHEN p_width >= interval '1 hour' THEN date_trunc('hour', p_time, p_tz)
        ELSE date_trunc('hour', p_time, p_tz) + p_width * floor(
            extract(epoch FROM p_time - date_trunc('hour', p_time, p_tz)) / extract(epoch FROM p_width))
    END
$$;

-- The end of the bucket that starts at ``p_bucket`` (local days are 23 to 25 hours long).
CREATE OR REPLACE FUNCTION rollup_bucket_end(p_bucket timestamptz, p_width interval, p_tz text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_width >= interval '1 day'
        THEN ((p_bucket AT TIME ZONE p_tz) + interval '1 day') AT TIME ZONE p_tz
        ELSE p_bucket + p_width END
$$;

-- The buckets that intersect [p_from, p_to).
CREATE OR REPLACE FUNCTION rollup_buckets(p_from timestamptz, p_to timestamptz, p_width interval, p_tz text)
RETURNS TABLE (bucket timestamptz, bucket_end timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT b, rollup_bucket_end(b, p_width, p_tz) FROM (
        SELECT CASE WHEN p_width >= interval '1 day' THEN d AT TIME ZONE p_tz ELSE d AT TIME ZONE 'UTC' END AS b
        FROM generate_series(
            CASE WHEN p_width >= interval '1 day'
                 THEN rollup_floor(p_from, p_width, p_tz) AT TIME ZONE p_tz
                 ELSE rollup_floor(p_from, p_width, p_tz) AT TIME ZONE 'UTC' END,
            CASE WHEN p_width >= interval '1 day' THEN (p_to AT TIME ZONE p_tz) ELSE (p_to AT TIME ZONE 'UTC') END
                - interval '1 microsecond',
            CASE WHEN p_width >= interval '1 day' THEN interval '1 day' ELSE p_width END) AS d
    ) s
$$;

-- The buckets that a segment [p_x, p_x_next) covers within [p_lo, p_hi). Sub-day buckets repeat every width from
-- ``p_origin`` (a local bucket start; DST shifts are whole hours), so they are counted, not looked up; local
-- days go through rollup_buckets.
CREATE OR REPLACE FUNCTION rollup_segment_buckets(p_x timestamptz, p_x_next timestamptz, p_lo timestamptz,
                                                  p_hi timestamptz, p_origin timestamptz,
                                                  p_width_s numeric, p_width interval, p_tz text)
RETURNS TABLE (bucket timestamptz, bucket_end timestamptz)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_origin + k * p_width, p_origin + (k + 1) * p_width
    FROM generate_series(floor(extract(epoch FROM greatest(p_x, p_lo) - p_origin) / p_width_s)::bigint,
                         ceil(extract(epoch FROM least(p_x_next, p_hi) - p_origin) / p_width_s)::bigint - 1) AS k
    WHERE p_width < interval '1 day'
    UNION ALL
    SELECT * FROM rollup_buckets(greatest(p_x, p_lo), least(p_x_next, p_hi), p_width, p_tz)
    WHERE p_width >= interval '1 day'
$$;

-- Time-weighted occupancy of lots from their events, per bucket intersecting [p_start, p_end), counted up to
-- ``p_now`` (the open bucket ends there). Only buckets with at least one known space are returned. Columns:
-- occupied_s / free_s (space-seconds), occupied_end / free_end (spaces just before the bucket's end, or
-- ``p_now``), free_min (fewest free spaces at any moment of the bucket), events (readings in the bucket).
CREATE OR REPLACE FUNCTION parking_occupancy(p_lots text[], p_start timestamptz, p_end timestamptz,
                                             p_width interval, p_tz text, p_factor double precision,
                                             p_now timestamptz DEFAULT 'infinity')
RETURNS TABLE (lot_id text, bucket timestamptz, occupied_s double precision, free_s double precision,
               occupied_end integer, free_end integer, free_min integer, events integer)
LANGUAGE sql STABLE AS $$
WITH span AS (
    SELECT p_start AS lo, least(p_end, p_now) AS hi, rollup_floor(p_start, p_width, p_tz) AS origin,
           extract(epoch FROM p_width) AS width_s,
           make_interval(secs => p_factor * coalesce((SELECT max(report_interval_s) FROM devices), 3600)) AS hold
),
ev AS (
    SELECT pe.lot_id, coalesce(pe.site_id, pe.dev_eui) AS space, pe.time, pe.occupied,
           pe.time + make_interval(secs => p_factor * coalesce(d.report_interval_s, 3600)) AS stale_at
    FROM parking_events pe LEFT JOIN devices d ON d.dev_eui = pe.dev_eui, span
    WHERE pe.lot_id = ANY(p_lots) AND pe.time >= span.lo - span.hold AND pe.time < span.hi
),
iv AS (  -- each reading's interval: until the space's next reading or until it goes stale
    SELECT lot_id, time AS t0, least(stale_at, lead(time) OVER (PARTITION BY lot_id, space ORDER BY time)) AS t1,
           occupied
    FROM ev
),
pts AS (  -- changes of the lot's counts
    SELECT lot_id, x, sum(d_occ) AS d_occ, sum(d_free) AS d_free FROM (
        SELECT lot_id, t0 AS x, occupied::int AS d_occ, (NOT occupied)::int AS d_free FROM iv WHERE t1 > t0
        UNION ALL
        SELECT lot_id, t1, -occupied::int, -(NOT occupied)::int FROM iv WHERE t1 > t0
    ) c GROUP BY lot_id, x
),
seg AS (  -- constant counts on [x, x_next)
    SELECT lot_id, x, lead(x) OVER w AS x_next,
           sum(d_occ) OVER (w ROWS UNBOUNDED PRECEDING) AS n_occ,
           sum(d_free) OVER (w ROWS UNBOUNDED PRECEDING) AS n_free
    FROM pts WINDOW w AS (PARTITION BY lot_id ORDER BY x)
),
part AS (  -- segments with a known space, cut into the buckets they cover, within [lo, hi)
    SELECT seg.lot_id, b.bucket, least(b.bucket_end, span.hi) AS b_end,
           greatest(seg.x, b.bucket, span.lo) AS a, least(seg.x_next, b.bucket_end, span.hi) AS z,
           seg.n_occ, seg.n_free
    FROM seg, span,
         LATERAL rollup_segment_buckets(seg.x, seg.x_next, span.lo, span.hi, span.origin, span.width_s, p_width, p_tz) b
    WHERE seg.x_next IS NOT NULL AND seg.n_occ + seg.n_free > 0 AND seg.x < span.hi AND seg.x_next > span.lo
),
agg AS (
    SELECT lot_id, bucket, b_end,
           sum(n_occ * extract(epoch FROM z - a))::double precision AS occupied_s,
           sum(n_free * extract(epoch FROM z - a))::double precision AS free_s,
           coalesce(max(n_occ) FILTER (WHERE z = b_end), 0)::int AS occupied_end,
           coalesce(max(n_free) FILTER (WHERE z = b_end), 0)::int AS free_end,
           CASE WHEN sum(z - a) < b_end - greatest(bucket, (SELECT lo FROM span)) THEN 0 ELSE min(n_free) END::int
               AS free_min
    FROM part WHERE z > a GROUP BY lot_id, bucket, b_end
),
counted AS (
    SELECT ev.lot_id, rollup_floor(ev.time, p_width, p_tz) AS bucket, count(*)::int AS events
    FROM ev, span WHERE ev.time >= span.lo GROUP BY 1, 2
)
SELECT agg.lot_id, agg.bucket, agg.occupied_s, agg.free_s, agg.occupied_end, agg.free_end, agg.free_min,
       coalesce(c.events, 0)
FROM agg LEFT JOIN counted c ON c.lot_id = agg.lot_id AND c.bucket = agg.bucket
ORDER BY 1, 2
$$;

-- Passengers on board per line: each vehicle's people count (``pax_count``) holds like a parking state.
-- Columns: on_board_s (passenger-seconds), on_board_end, vehicles_end (vehicles reporting at the end),
-- pax_in / pax_out (boardings and alightings counted in the bucket), readings.
CREATE OR REPLACE FUNCTION line_load(p_lines text[], p_start timestamptz, p_end timestamptz, p_width interval,
                                     p_tz text, p_factor double precision, p_now timestamptz DEFAULT 'infinity')
RETURNS TABLE (line_id text, bucket timestamptz, on_board_s double precision, on_board_end integer,
               vehicles_end integer, pax_in bigint, pax_out bigint, readings integer)
LANGUAGE sql STABLE AS $$
WITH span AS (
    SELECT p_start AS lo, least(p_end, p_now) AS hi, rollup_floor(p_start, p_width, p_tz) AS origin,
           extract(epoch FROM p_width) AS width_s,
           make_interval(secs => p_factor * coalesce((SELECT max(report_interval_s) FROM devices), 3600)) AS hold
),
ev AS (
    SELECT pc.line_id, coalesce(pc.site_id, pc.dev_eui) AS vehicle, pc.time, pc.pax_count, pc.pax_in, pc.pax_out,
           pc.time + make_interval(secs => p_factor * coalesce(d.report_interval_s, 3600)) AS stale_at
    FROM passenger_counts pc LEFT JOIN devices d ON d.dev_eui = pc.dev_eui, span
    WHERE pc.line_id = ANY(p_lines) AND pc.time >= span.lo - span.hold AND pc.time < span.hi
),
iv AS (
    SELECT line_id, time AS t0, pax_count,
           least(stale_at, lead(time) OVER (PARTITION BY line_id, vehicle ORDER BY time)) AS t1
    FROM ev WHERE pax_count IS NOT NULL
),
pts AS (
    SELECT line_id, x, sum(d_pax) AS d_pax, sum(d_veh) AS d_veh FROM (
        SELECT line_id, t0 AS x, pax_count AS d_pax, 1 AS d_veh FROM iv WHERE t1 > t0
        UNION ALL
        SELECT line_id, t1, -pax_count, -1 FROM iv WHERE t1 > t0
    ) c GROUP BY line_id, x
),
seg AS (
    SELECT line_id, x, lead(x) OVER w AS x_next,
           sum(d_pax) OVER (w ROWS UNBOUNDED PRECEDING) AS n_pax,
           sum(d_veh) OVER (w ROWS UNBOUNDED PRECEDING) AS n_veh
    FROM pts WINDOW w AS (PARTITION BY line_id ORDER BY x)
),
part AS (
    SELECT seg.line_id, b.bucket, least(b.bucket_end, span.hi) AS b_end,
           greatest(seg.x, b.bucket, span.lo) AS a, least(seg.x_next, b.bucket_end, span.hi) AS z,
           seg.n_pax, seg.n_veh
    FROM seg, span,
         LATERAL rollup_segment_buckets(seg.x, seg.x_next, span.lo, span.hi, span.origin, span.width_s, p_width, p_tz) b
    WHERE seg.x_next IS NOT NULL AND seg.n_veh > 0 AND seg.x < span.hi AND seg.x_next > span.lo
),
load AS (
    SELECT line_id, bucket,
           sum(n_pax * extract(epoch FROM z - a))::double precision AS on_board_s,
           coalesce(max(n_pax) FILTER (WHERE z = b_end), 0)::int AS on_board_end,
           coalesce(max(n_veh) FILTER (WHERE z = b_end), 0)::int AS vehicles_end
    FROM part WHERE z > a GROUP BY line_id, bucket
),
counted AS (
    SELECT ev.line_id, rollup_floor(ev.time, p_width, p_tz) AS bucket, sum(ev.pax_in) AS pax_in,
           sum(ev.pax_out) AS pax_out, count(*)::int AS readings
    FROM ev, span WHERE ev.time >= span.lo GROUP BY 1, 2
)
SELECT coalesce(l.line_id, c.line_id), coalesce(l.bucket, c.bucket), coalesce(l.on_board_s, 0),
       coalesce(l.on_board_end, 0), coalesce(l.vehicles_end, 0), coalesce(c.pax_in, 0), coalesce(c.pax_out, 0),
       coalesce(c.readings, 0)
FROM load l FULL JOIN counted c ON c.line_id = l.line_id AND c.bucket = l.bucket
ORDER BY 1, 2
$$;

-- Spans of stored readings whose rollups are not refreshed yet (kind: parking_lot | line_load).
CREATE TABLE IF NOT EXISTS rollup_dirty (
    kind      text NOT NULL,
    key       text NOT NULL,
    first     timestamptz NOT NULL,
    last      timestamptz NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS rollup_dirty_key_idx ON rollup_dirty (kind, key, first);

-- Columns in the order of the function that computes them (parking_occupancy, line_load).
CREATE TABLE IF NOT EXISTS parking_lot_hourly (
    lot_id       text NOT NULL,
    bucket       timestamptz NOT NULL,       -- hour start, reporting time zone
    occupied_s   double precision NOT NULL,  -- space-seconds occupied
    free_s       double precision NOT NULL,
    occupied_end integer NOT NULL,           -- spaces at the end of the hour
    free_end     integer NOT NULL,
    free_min     integer NOT NULL,
    events       integer NOT NULL,
    PRIMARY KEY (lot_id, bucket)
);

CREATE TABLE IF NOT EXISTS line_load_hourly (
    line_id      text NOT NULL,
    bucket       timestamptz NOT NULL,
    on_board_s   double precision NOT NULL,  -- passenger-seconds on board
    on_board_end integer NOT NULL,
    vehicles_end integer NOT NULL,
    pax_in       bigint NOT NULL,
    pax_out      bigint NOT NULL,
    readings     integer NOT NULL,
    PRIMARY KEY (line_id, bucket)
);

-- Recompute the hourly rollup of ``p_kind`` (parking_lot | line_load) for the spans of the keys (lots, lines): per
-- key, [its first reading, its last reading + hold). Readings before the first cannot change (a reading only
-- shortens its predecessor from its own time on). Then the days those hours belong to.
-- the roles of 0007: the ingest queues spans and keeps the rollups current (rollup_refresh runs with its rights),
-- the API reads them and the queue (spans not yet rolled up are computed from the readings), Grafana reads them
GRANT SELECT, INSERT, DELETE ON rollup_dirty TO stadtpuls_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON parking_lot_hourly, line_load_hourly TO stadtpuls_ingest;
GRANT SELECT ON rollup_dirty, parking_lot_hourly, line_load_hourly TO stadtpuls_api;
GRANT SELECT ON parking_lot_hourly TO stadtpuls_grafana;  -- the parking dashboard's hourly panels, instead of
REVOKE SELECT ON parking_hourly FROM stadtpuls_grafana;    -- the sample-based view

CREATE OR REPLACE FUNCTION rollup_refresh(p_kind text, p_keys text[], p_first timestamptz[], p_last timestamptz[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
    hold interval := make_interval(secs => @SILENT_FACTOR@ * coalesce((SELECT max(report_interval_s) FROM devices), 3600));
    key_column text := CASE p_kind WHEN 'parking_lot' THEN 'lot_id' WHEN 'line_load' THEN 'line_id' END;
    compute text := CASE p_kind WHEN 'parking_lot' THEN 'parking_occupancy' WHEN 'line_load' THEN 'line_load' END;
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF key_column IS NULL THEN
        RAISE EXCEPTION 'unknown rollup %', p_kind;
    END IF;
    FOR r IN SELECT * FROM unnest(p_keys, p_first, p_last) AS u(key, first, last) ORDER BY 1 LOOP
        -- one refresh of a key at a time: concurrent refreshes queue here (in key order, no deadlock)
        PERFORM pg_advisory_xact_lock(hashtext(p_kind), hashtext(r.key));
        lo := rollup_floor(r.first, interval '1 hour', @TZ@);
        hi := rollup_bucket_end(rollup_floor(r.last + hold, interval '1 hour', @TZ@), interval '1 hour', @TZ@);
        EXECUTE format('DELETE FROM %I WHERE %I = $1 AND bucket >= $2 AND bucket < $3', p_kind || '_hourly', key_column)
            USING r.key, lo, hi;
        EXECUTE format('INSERT INTO %I SELECT * FROM %I(ARRAY[$1], $2, $3, interval ''1 hour'', %L, %s)',
                       p_kind || '_hourly', compute, @TZ@, @SILENT_FACTOR@)
            USING r.key, lo, hi;
        PERFORM rollup_refresh_daily(p_kind, r.key, lo, hi);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Build every rollup from the readings stored (the migration calls it once the daily rollups exist).
CREATE OR REPLACE FUNCTION rollups_build() RETURNS void LANGUAGE sql AS $$
    SELECT rollup_refresh('parking_lot', array_agg(lot_id), array_agg(first), array_agg(last))
    FROM (SELECT lot_id, min(time) AS first, max(time) AS last FROM parking_events
          WHERE lot_id IS NOT NULL GROUP BY lot_id) s;
    SELECT rollup_refresh('line_load', array_agg(line_id), array_agg(first), array_agg(last))
    FROM (SELECT line_id, min(time) AS first, max(time) AS last FROM passenger_counts
          WHERE line_id IS NOT NULL GROUP BY line_id) s;
$$;

-- The time zone the rollups are bucketed in (the reporting time zone when migrated).
CREATE OR REPLACE FUNCTION rollup_timezone() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT @TZ@::text $$;

-- Take the queued spans, merged per lot and line, and refresh them; returns the lots and lines refreshed.
CREATE OR REPLACE FUNCTION rollups_refresh_pending() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    lots text[]; lot_first timestamptz[]; lot_last timestamptz[];
    lines text[]; line_first timestamptz[]; line_last timestamptz[];
BEGIN
    WITH taken AS (DELETE FROM rollup_dirty RETURNING kind, key, first, last),
    spans AS (SELECT kind, key, min(first) AS first, max(last) AS last FROM taken GROUP BY kind, key)
    SELECT array_agg(key) FILTER (WHERE kind = 'parking_lot'), array_agg(first) FILTER (WHERE kind = 'parking_lot'),
           array_agg(last) FILTER (WHERE kind = 'parking_lot'), array_agg(key) FILTER (WHERE kind = 'line_load'),
           array_agg(first) FILTER (WHERE kind = 'line_load'), array_agg(last) FILTER (WHERE kind = 'line_load')
    INTO lots, lot_first, lot_last, lines, line_first, line_last FROM spans;
    RETURN coalesce(rollup_refresh('parking_lot', lots, lot_first, lot_last), 0)
         + coalesce(rollup_refresh('line_load', lines, line_first, line_last), 0);
END $$;
