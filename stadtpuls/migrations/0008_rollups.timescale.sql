-- TimescaleDB: the hourly rollups (kept by the writer) become hypertables; the daily rollups are continuous
-- aggregates on them (local days of the reporting time zone), with real-time aggregation for the days not yet
-- materialised. Same names and columns as the plain-PostgreSQL tables, so the same queries serve both.
SELECT create_hypertable('parking_lot_hourly', by_range('bucket', INTERVAL '90 days'), if_not_exists => true,
                         migrate_data => true);
SELECT create_hypertable('line_load_hourly', by_range('bucket', INTERVAL '90 days'), if_not_exists => true,
                         migrate_data => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS parking_lot_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('1 day', bucket, @TZ@) AS bucket, lot_id, sum(occupied_s) AS occupied_s, sum(free_s) AS free_s,
       last(occupied_end, bucket) AS occupied_end, last(free_end, bucket) AS free_end, max(bucket) AS last_hour,
       min(free_min) AS free_min, count(*)::int AS hours, sum(events)::bigint AS events
FROM parking_lot_hourly GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS line_load_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('1 day', bucket, @TZ@) AS bucket, line_id, sum(on_board_s) AS on_board_s,
       last(on_board_end, bucket) AS on_board_end, last(vehicles_end, bucket) AS vehicles_end,
       max(bucket) AS last_hour, sum(pax_in)::bigint AS pax_in, sum(pax_out)::bigint AS pax_out,
       sum(readings)::bigint AS readings, count(*)::int AS hours
FROM line_load_hourly GROUP BY 1, 2
WITH NO DATA;

-- start_offset NULL: from the oldest day, so backfilled history is materialised too (only invalidated days are
-- recomputed, so a long window costs nothing when nothing changed).
SELECT add_continuous_aggregate_policy('parking_lot_daily', start_offset => NULL, end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour', if_not_exists => true);
SELECT add_continuous_aggregate_policy('line_load_daily', start_offset => NULL, end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '1 hour', if_not_exists => true);

-- the continuous aggregates follow the hourly rows by themselves
CREATE OR REPLACE FUNCTION rollup_refresh_daily(p_kind text, p_key text, p_from timestamptz, p_to timestamptz)
RETURNS void LANGUAGE plpgsql AS $$ BEGIN END $$;

GRANT SELECT ON parking_lot_daily, line_load_daily TO stadtpuls_ingest, stadtpuls_api;

SELECT rollups_build();
