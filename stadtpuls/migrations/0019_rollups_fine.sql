-- Finer and wider history rollups (both modes; the mode's own file follows): lots and lines per 15 minutes, from
-- which their hours are summed, and a bin's fill per hour and local day (``bin_fill_hourly``, ``bin_fill_daily``:
-- tables on plain PostgreSQL, continuous aggregates on TimescaleDB, see the mode's file). The writer queues the
-- span of a batch's bin readings per bin (kind ``bin_fill``) beside the lots and lines; ``rollup_refresh``
-- refreshes every kind.
--
-- An hour from its quarters equals the hour computed from the readings: sums add; the state at the hour's end is
-- its last quarter's when that quarter has a row (a quarter without a row had nothing known, so the hour ends
-- unknown: 0); the minimum is the quarters' minimum when all four have a row, else 0 (a moment with nothing
-- known). Quarters are whole 15 minutes of a local hour, and local hours are whole hours of time in every zone.

CREATE TABLE IF NOT EXISTS parking_lot_15min (  -- the columns of parking_lot_hourly
    lot_id       text NOT NULL,
    bucket       timestamptz NOT NULL,       -- quarter-hour start, reporting time zone
    occupied_s   double precision NOT NULL,
    free_s       double precision NOT NULL,
    occupied_end integer NOT NULL,
    free_end     integer NOT NULL,
    free_min     integer NOT NULL,
    events       integer NOT NULL,
    PRIMARY KEY (lot_id, bucket)
);

CREATE TABLE IF NOT EXISTS line_load_15min (  -- the columns of line_load_hourly
    line_id      text NOT NULL,
    bucket       timestamptz NOT NULL,
    on_board_s   double precision NOT NULL,
    on_board_end integer NOT NULL,
    vehicles_end integer NOT NULL,
    pax_in       bigint NOT NULL,
    pax_out      bigint NOT NULL,
    readings     integer NOT NULL,
    PRIMARY KEY (line_id, bucket)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON parking_lot_15min, line_load_15min TO stadtpuls_ingest;
GRANT SELECT ON parking_lot_15min, line_load_15min TO stadtpuls_api;
-- A town's security-barrier view of the rollup ``p_name`` (0016_tenant_rls), its rows filtered on the town of the
-- site in ``p_key``, for the town's Grafana.
CREATE OR REPLACE FUNCTION rollup_town_view(p_name text, p_key text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE VIEW town.%I WITH (security_barrier) AS SELECT * FROM public.%I'
                   ' WHERE %I IN (SELECT site_id FROM public.sites'
                   ' WHERE tenant = (SELECT tenant_of_role(current_user)))',
                   p_name, p_name, p_key);
    EXECUTE format('GRANT SELECT ON town.%I TO stadtpuls_town', p_name);
END $$;
REVOKE EXECUTE ON FUNCTION rollup_town_view(text, text) FROM PUBLIC;

-- the buses dashboard's boardings per line read the line rollups, the waste dashboard the bins' rollups (each
-- mode's file) instead of the sample-based hourly view
GRANT SELECT ON line_load_hourly, line_load_daily TO stadtpuls_grafana;
SELECT rollup_town_view('line_load_hourly', 'line_id'), rollup_town_view('line_load_daily', 'line_id');
REVOKE SELECT ON bin_levels_hourly FROM stadtpuls_grafana;
DROP VIEW IF EXISTS town.bin_levels_hourly;

-- The readings' computations (0008) without JIT: their row estimates are far too high (the time bounds come from
-- a CTE), so a history's open hour, a few hundred readings and 20 ms of work, spent 150 ms compiling.
ALTER FUNCTION parking_occupancy(text[], timestamptz, timestamptz, interval, text, double precision, timestamptz)
    SET jit = off;
ALTER FUNCTION line_load(text[], timestamptz, timestamptz, interval, text, double precision, timestamptz)
    SET jit = off;

-- The hours of a lot or line in [p_lo, p_hi) (whole local hours) summed from its quarters.
CREATE OR REPLACE FUNCTION rollup_hours_from_quarters(p_kind text, p_key text, p_lo timestamptz, p_hi timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_kind = 'parking_lot' THEN
        DELETE FROM parking_lot_hourly WHERE lot_id = p_key AND bucket >= p_lo AND bucket < p_hi;
        INSERT INTO parking_lot_hourly
        SELECT lot_id, h, sum(occupied_s), sum(free_s),
               CASE WHEN max(bucket) = h + interval '45 minutes'
                    THEN (array_agg(occupied_end ORDER BY bucket DESC))[1] ELSE 0 END,
               CASE WHEN max(bucket) = h + interval '45 minutes'
                    THEN (array_agg(free_end ORDER BY bucket DESC))[1] ELSE 0 END,
               CASE WHEN count(*) = 4 THEN min(free_min) ELSE 0 END, sum(events)
        FROM (SELECT *, rollup_floor(bucket, interval '1 hour', @TZ@) AS h FROM parking_lot_15min
              WHERE lot_id = p_key AND bucket >= p_lo AND bucket < p_hi) q
        GROUP BY lot_id, h;
    ELSE
        DELETE FROM line_load_hourly WHERE line_id = p_key AND bucket >= p_lo AND bucket < p_hi;
        INSERT INTO line_load_hourly
        SELECT line_id, h, sum(on_board_s),
               CASE WHEN max(bucket) = h + interval '45 minutes'
                    THEN (array_agg(on_board_end ORDER BY bucket DESC))[1] ELSE 0 END,
               CASE WHEN max(bucket) = h + interval '45 minutes'
                    THEN (array_agg(vehicles_end ORDER BY bucket DESC))[1] ELSE 0 END,
               sum(pax_in), sum(pax_out), sum(readings)
        FROM (SELECT *, rollup_floor(bucket, interval '1 hour', @TZ@) AS h FROM line_load_15min
              WHERE line_id = p_key AND bucket >= p_lo AND bucket < p_hi) q
        GROUP BY line_id, h;
    END IF;
END $$;

-- Recompute the rollups of ``p_kind`` (parking_lot | line_load | bin_fill) for the spans of the keys (lots, lines,
-- bins). Lots and lines: per key, the quarters of [its first reading, its last reading + hold) from the readings
-- (readings before the first cannot change: a reading only shortens its predecessor from its own time on), then
-- those hours from the quarters, then the days those hours belong to. Bins: the mode's rollup_refresh_bins.
CREATE OR REPLACE FUNCTION rollup_refresh(p_kind text, p_keys text[], p_first timestamptz[], p_last timestamptz[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
    hold interval := make_interval(
        secs => @SILENT_FACTOR@ * coalesce((SELECT max(report_interval_s) FROM devices), 3600));
    key_column text := CASE p_kind WHEN 'parking_lot' THEN 'lot_id' WHEN 'line_load' THEN 'line_id'
                                   WHEN 'bin_fill' THEN 'site_id' END;
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
        IF p_kind = 'bin_fill' THEN
            PERFORM rollup_refresh_bins(r.key, r.first, r.last);
        ELSE
            lo := rollup_floor(r.first, interval '1 hour', @TZ@);
            hi := rollup_bucket_end(rollup_floor(r.last + hold, interval '1 hour', @TZ@), interval '1 hour', @TZ@);
            EXECUTE format('DELETE FROM %I WHERE %I = $1 AND bucket >= $2 AND bucket < $3', p_kind || '_15min',
                           key_column)
                USING r.key, lo, hi;
            EXECUTE format('INSERT INTO %I SELECT * FROM %I(ARRAY[$1], $2, $3, interval ''15 minutes'', %L, %s)',
                           p_kind || '_15min', compute, @TZ@, @SILENT_FACTOR@)
                USING r.key, lo, hi;
            PERFORM rollup_hours_from_quarters(p_kind, r.key, lo, hi);
            PERFORM rollup_refresh_daily(p_kind, r.key, lo, hi);
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Build every rollup from the readings stored (each mode's file calls it once its objects exist).
CREATE OR REPLACE FUNCTION rollups_build() RETURNS void LANGUAGE sql AS $$
    SELECT rollup_refresh('parking_lot', array_agg(lot_id), array_agg(first), array_agg(last))
    FROM (SELECT lot_id, min(time) AS first, max(time) AS last FROM parking_events
          WHERE lot_id IS NOT NULL GROUP BY lot_id) s;
    SELECT rollup_refresh('line_load', array_agg(line_id), array_agg(first), array_agg(last))
    FROM (SELECT line_id, min(time) AS first, max(time) AS last FROM passenger_counts
          WHERE line_id IS NOT NULL GROUP BY line_id) s;
    SELECT rollup_refresh('bin_fill', array_agg(site_id), array_agg(first), array_agg(last))
    FROM (SELECT site_id, min(time) AS first, max(time) AS last FROM bin_levels
          WHERE site_id IS NOT NULL GROUP BY site_id) s;
$$;

-- Take the queued spans, merged per kind and key, and refresh them; returns the keys refreshed.
CREATE OR REPLACE FUNCTION rollups_refresh_pending() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    spans rollup_dirty[];
    k text;
    n integer := 0;
BEGIN
    WITH taken AS (DELETE FROM rollup_dirty RETURNING kind, key, first, last)
    SELECT array_agg(ROW(kind, key, first, last, now())::rollup_dirty ORDER BY kind, key) INTO spans
    FROM (SELECT kind, key, min(first) AS first, max(last) AS last FROM taken GROUP BY kind, key) s;
    FOR k IN SELECT DISTINCT kind FROM unnest(spans) ORDER BY 1 LOOP
        n := n + rollup_refresh(k, ARRAY(SELECT key FROM unnest(spans) WHERE kind = k ORDER BY key),
                                ARRAY(SELECT first FROM unnest(spans) WHERE kind = k ORDER BY key),
                                ARRAY(SELECT last FROM unnest(spans) WHERE kind = k ORDER BY key));
    END LOOP;
    RETURN n;
END $$;
