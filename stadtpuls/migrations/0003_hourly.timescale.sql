-- TimescaleDB: hourly continuous aggregates bucketed in the reporting time zone. Created WITH NO DATA inside the
-- migration's transaction; materialized_only = false serves not yet materialised hours from the raw rows, and the
-- refresh policies materialise the rest.
CREATE MATERIALIZED VIEW IF NOT EXISTS uplinks_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('1 hour', time, @TZ@) AS bucket, dev_eui,
       count(*) AS uplinks, avg(rssi) AS rssi_avg, min(rssi) AS rssi_min, avg(snr) AS snr_avg,
       max(f_cnt) AS f_cnt_max
FROM uplinks GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS bin_levels_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('1 hour', time, @TZ@) AS bucket, dev_eui, site_id,
       avg(fill_pct) AS fill_avg, max(fill_pct) AS fill_max, min(fill_pct) AS fill_min,
       last(fill_pct, time) AS fill_last, min(battery_v) AS battery_v_min, count(*) AS readings
FROM bin_levels GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS parking_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('1 hour', time, @TZ@) AS bucket, dev_eui, site_id, lot_id,
       last(occupied, time) AS occupied_last, avg(occupied::int) AS occupied_share, count(*) AS events
FROM parking_events GROUP BY 1, 2, 3, 4
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS passengers_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('1 hour', time, @TZ@) AS bucket, line_id, stop_id, site_id, dev_eui,
       sum(pax_in) AS pax_in, sum(pax_out) AS pax_out, max(pax_count) AS pax_count_max, count(*) AS readings
FROM passenger_counts GROUP BY 1, 2, 3, 4, 5
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS environment_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('1 hour', time, @TZ@) AS bucket, dev_eui, site_id,
       avg(temperature_c) AS temperature_avg, avg(humidity_pct) AS humidity_avg, avg(co2_ppm) AS co2_avg,
       count(*) AS readings
FROM environment_readings GROUP BY 1, 2, 3
WITH NO DATA;

SELECT add_continuous_aggregate_policy('uplinks_hourly', start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('bin_levels_hourly', start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('parking_hourly', start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('passengers_hourly', start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('environment_hourly', start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
