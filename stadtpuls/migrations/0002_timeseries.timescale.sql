-- TimescaleDB: hypertables (1-day chunks), compression segmented by device, retention of raw uplinks.
SELECT create_hypertable('uplinks', by_range('time', INTERVAL '1 day'), if_not_exists => true, migrate_data => true);
SELECT create_hypertable('bin_levels', by_range('time', INTERVAL '7 days'), if_not_exists => true, migrate_data => true);
SELECT create_hypertable('parking_events', by_range('time', INTERVAL '7 days'), if_not_exists => true, migrate_data => true);
SELECT create_hypertable('passenger_counts', by_range('time', INTERVAL '7 days'), if_not_exists => true, migrate_data => true);
SELECT create_hypertable('environment_readings', by_range('time', INTERVAL '7 days'), if_not_exists => true, migrate_data => true);

ALTER TABLE uplinks SET (timescaledb.compress, timescaledb.compress_segmentby = 'dev_eui',
                         timescaledb.compress_orderby = 'time DESC, dedup_key');
ALTER TABLE bin_levels SET (timescaledb.compress, timescaledb.compress_segmentby = 'dev_eui',
                            timescaledb.compress_orderby = 'time DESC');
ALTER TABLE parking_events SET (timescaledb.compress, timescaledb.compress_segmentby = 'dev_eui',
                                timescaledb.compress_orderby = 'time DESC');
ALTER TABLE passenger_counts SET (timescaledb.compress, timescaledb.compress_segmentby = 'dev_eui',
                                  timescaledb.compress_orderby = 'time DESC');
ALTER TABLE environment_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'dev_eui',
                                      timescaledb.compress_orderby = 'time DESC');

SELECT add_compression_policy('uplinks', make_interval(days => @COMPRESS_AFTER_DAYS@), if_not_exists => true);
SELECT add_compression_policy('bin_levels', make_interval(days => @COMPRESS_AFTER_DAYS@), if_not_exists => true);
SELECT add_compression_policy('parking_events', make_interval(days => @COMPRESS_AFTER_DAYS@), if_not_exists => true);
SELECT add_compression_policy('passenger_counts', make_interval(days => @COMPRESS_AFTER_DAYS@), if_not_exists => true);
SELECT add_compression_policy('environment_readings', make_interval(days => @COMPRESS_AFTER_DAYS@), if_not_exists => true);

SELECT add_retention_policy('uplinks', make_interval(days => @RAW_RETENTION_DAYS@), if_not_exists => true);
