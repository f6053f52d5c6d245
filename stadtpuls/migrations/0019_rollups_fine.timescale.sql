-- TimescaleDB: the quarter-hour rollups of lots and lines (kept by the rollup job, like their hours) are
-- hypertables; a bin's fill per hour is a continuous aggregate on bin_levels and its local days a continuous
-- aggregate on the hours (hierarchical, 2.9+), both with real-time aggregation for what is not materialised yet.
-- Same names and columns as the plain-PostgreSQL tables. Created WITH NO DATA inside the migration's
-- transaction; the refresh policies (from the oldest bucket, so backfilled readings are materialised too)
-- materialise them, and until then real-time aggregation answers from the readings. Only readings with a fill
-- level count. Then the lots' and lines' rollups are built for the readings already stored.
SELECT create_hypertable('parking_lot_15min', by_range('bucket', INTERVAL '30 days'), if_not_exists => true,
                         migrate_data => true);
SELECT create_hypertable('line_load_15min', by_range('bucket', INTERVAL '30 days'), if_not_exists => true,
                         migrate_data => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS bin_fill_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT site_id, time_bucket('1 hour', time, @TZ@) AS bucket, last(fill_pct, time) AS fill_last,
       min(fill_pct) AS fill_min, max(fill_pct) AS fill_max, sum(fill_pct::float8) AS fill_sum,
       count(*)::int AS readings, min(battery_v) AS battery_v_min
FROM bin_levels WHERE site_id IS NOT NULL AND fill_pct IS NOT NULL GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS bin_fill_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT site_id, time_bucket('1 day', bucket, @TZ@) AS bucket, last(fill_last, bucket) AS fill_last,
       min(fill_min) AS fill_min, max(fill_max) AS fill_max, sum(fill_sum) AS fill_sum,
       sum(readings)::int AS readings, min(battery_v_min) AS battery_v_min
FROM bin_fill_hourly GROUP BY 1, 2
WITH NO DATA;

SELECT add_continuous_aggregate_policy('bin_fill_hourly', start_offset => NULL, end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('bin_fill_daily', start_offset => NULL, end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour', if_not_exists => true);

-- the continuous aggregates follow bin_levels by themselves
CREATE OR REPLACE FUNCTION rollup_refresh_bins(p_key text, p_first timestamptz, p_last timestamptz)
RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$;

GRANT SELECT ON bin_fill_hourly, bin_fill_daily TO stadtpuls_ingest, stadtpuls_api, stadtpuls_grafana;

SELECT rollup_town_view('bin_fill_hourly', 'site_id'), rollup_town_view('bin_fill_daily', 'site_id');

SELECT rollups_build();
