-- Plain PostgreSQL: the tables of 0001 stay ordinary tables; BRIN indexes keep time scans cheap on large tables.
CREATE INDEX IF NOT EXISTS uplinks_time_brin ON uplinks USING brin (time);
CREATE INDEX IF NOT EXISTS bin_levels_time_brin ON bin_levels USING brin (time);
CREATE INDEX IF NOT EXISTS parking_events_time_brin ON parking_events USING brin (time);
CREATE INDEX IF NOT EXISTS passenger_counts_time_brin ON passenger_counts USING brin (time);
CREATE INDEX IF NOT EXISTS environment_readings_time_brin ON environment_readings USING brin (time);
