-- Plain PostgreSQL: a bin's fill per hour and local day are tables, refreshed by the rollup job for the spans the
-- writer queued (the hours of [first, last] from the readings, then their days from the hours). Then every
-- rollup is built for the readings already stored. Only readings with a fill level count.
CREATE TABLE IF NOT EXISTS bin_fill_hourly (
    site_id       text NOT NULL,
    bucket        timestamptz NOT NULL,      -- hour start, reporting time zone
    fill_last     real NOT NULL,             -- the bucket's last reading
    fill_min      real NOT NULL,
    fill_max      real NOT NULL,
    fill_sum      double precision NOT NULL, -- mean: fill_sum / readings
    readings      integer NOT NULL,
    battery_v_min real,
    PRIMARY KEY (site_id, bucket)
);

CREATE TABLE IF NOT EXISTS bin_fill_daily (  -- the columns of bin_fill_hourly, per local day
    site_id       text NOT NULL,
    bucket        timestamptz NOT NULL,      -- local midnight
    fill_last     real NOT NULL,
    fill_min      real NOT NULL,
    fill_max      real NOT NULL,
    fill_sum      double precision NOT NULL,
    readings      integer NOT NULL,
    battery_v_min real,
    PRIMARY KEY (site_id, bucket)
);

CREATE OR REPLACE FUNCTION rollup_refresh_bins(p_key text, p_first timestamptz, p_last timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := rollup_floor(p_first, interval '1 hour', @TZ@);
    hi timestamptz := rollup_bucket_end(rollup_floor(p_last, interval '1 hour', @TZ@), interval '1 hour', @TZ@);
    day_lo timestamptz := rollup_floor(p_first, interval '1 day', @TZ@);
    day_hi timestamptz := rollup_bucket_end(rollup_floor(p_last, interval '1 day', @TZ@), interval '1 day', @TZ@);
BEGIN
    DELETE FROM bin_fill_hourly WHERE site_id = p_key AND bucket >= lo AND bucket < hi;
    INSERT INTO bin_fill_hourly
    SELECT site_id, rollup_floor(time, interval '1 hour', @TZ@), (array_agg(fill_pct ORDER BY time DESC))[1],
           min(fill_pct), max(fill_pct), sum(fill_pct::float8), count(*), min(battery_v)
    FROM bin_levels WHERE site_id = p_key AND time >= lo AND time < hi AND fill_pct IS NOT NULL
    GROUP BY 1, 2;
    DELETE FROM bin_fill_daily WHERE site_id = p_key AND bucket >= day_lo AND bucket < day_hi;
    INSERT INTO bin_fill_daily
    SELECT site_id, rollup_floor(bucket, interval '1 day', @TZ@), (array_agg(fill_last ORDER BY bucket DESC))[1],
           min(fill_min), max(fill_max), sum(fill_sum), sum(readings), min(battery_v_min)
    FROM bin_fill_hourly WHERE site_id = p_key AND bucket >= day_lo AND bucket < day_hi
    GROUP BY 1, 2;
END $$;

GRANT SELECT, INSERT, UPDATE, DELETE ON bin_fill_hourly, bin_fill_daily TO stadtpuls_ingest;
GRANT SELECT ON bin_fill_hourly, bin_fill_daily TO stadtpuls_api, stadtpuls_grafana;

SELECT rollup_town_view('bin_fill_hourly', 'site_id'), rollup_town_view('bin_fill_daily', 'site_id');

SELECT rollups_build();
