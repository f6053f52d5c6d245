-- Plain PostgreSQL: ordinary views with the same names and columns as the TimescaleDB continuous aggregates,
-- bucketed by the hour in the reporting time zone.
CREATE OR REPLACE VIEW uplinks_hourly AS
SELECT date_trunc('hour', time AT TIME ZONE @TZ@) AT TIME ZONE @TZ@ AS bucket, dev_eui,
       count(*) AS uplinks, avg(rssi) AS rssi_avg, min(rssi) AS rssi_min, avg(snr) AS snr_avg,
       max(f_cnt) AS f_cnt_max
FROM uplinks GROUP BY 1, 2;

CREATE OR REPLACE VIEW bin_levels_hourly AS
SELECT date_trunc('hour', time AT TIME ZONE @TZ@) AT TIME ZONE @TZ@ AS bucket, dev_eui, site_id,
       avg(fill_pct) AS fill_avg, max(fill_pct) AS fill_max, min(fill_pct) AS fill_min,
       (array_agg(fill_pct ORDER BY time DESC))[1] AS fill_last, min(battery_v) AS battery_v_min,
       count(*) AS readings
FROM bin_levels GROUP BY 1, 2, 3;

CREATE OR REPLACE VIEW parking_hourly AS
SELECT date_trunc('hour', time AT TIME ZONE @TZ@) AT TIME ZONE @TZ@ AS bucket, dev_eui, site_id, lot_id,
       (array_agg(occupied ORDER BY time DESC))[1] AS occupied_last, avg(occupied::int) AS occupied_share,
       count(*) AS events
FROM parking_events GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE VIEW passengers_hourly AS
SELECT date_trunc('hour', time AT TIME ZONE @TZ@) AT TIME ZONE @TZ@ AS bucket, line_id, stop_id, site_id, dev_eui,
       sum(pax_in) AS pax_in, sum(pax_out) AS pax_out, max(pax_count) AS pax_count_max, count(*) AS readings
FROM passenger_counts GROUP BY 1, 2, 3, 4, 5;

CREATE OR REPLACE VIEW environment_hourly AS
SELECT date_trunc('hour', time AT TIME ZONE @TZ@) AT TIME ZONE @TZ@ AS bucket, dev_eui, site_id,
       avg(temperature_c) AS temperature_avg, avg(humidity_pct) AS humidity_avg, avg(co2_ppm) AS co2_avg,
       count(*) AS readings
FROM environment_readings GROUP BY 1, 2, 3;
