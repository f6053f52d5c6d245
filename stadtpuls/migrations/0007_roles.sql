-- Least privilege: the roles the services connect as, and what each may do. `migrate` runs as the owner of the
-- schema; the ingest, the API and Grafana log in as these roles (`stadtpuls migrate` gives them LOGIN and a
-- password from STADTPULS_INGEST_DB_PASSWORD, STADTPULS_API_DB_PASSWORD, STADTPULS_GRAFANA_DB_PASSWORD).
--
--   stadtpuls_ingest   writes sensor data (uplinks, readings, dead letters, frame-counter state); reads the
--                      registry (devices, sites); never api_keys, never changes the registry
--   stadtpuls_api      reads everything but writes only configuration (sites, devices, api_keys)
--   stadtpuls_grafana  reads only the tables and views the dashboards query; never api_keys
--
-- Convention for later migrations: a migration that creates a table or view grants it here-style to the roles
-- that need it, in the same file. No default privileges: a new table (a secret, say) is visible to nobody until
-- its migration says so. tests/stadtpuls/test_roles.py holds each relation's grants and fails for a relation it
-- does not know, so a new table cannot land without that decision.
--
-- TimescaleDB: a GRANT on a hypertable reaches its chunks (and chunks made later copy its privileges), and a GRANT
-- on a continuous aggregate reaches its materialisation hypertable and internal views (TimescaleDB 2.0 and later),
-- which real-time aggregation reads as the querying role; so the same statements serve both storage modes.
--
-- Roles belong to the server, not the database: several hub databases on one server share them (each database
-- holds its own grants). Creating them needs CREATEROLE (the compose owner is a superuser).

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['stadtpuls_ingest', 'stadtpuls_api', 'stadtpuls_grafana'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database on the same server
            END;
        END IF;
    END LOOP;
    -- the read-all role of earlier installs (deploy/timescaledb/grafana-reader.sh) loses its blanket read
    IF EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
               WHERE g.rolname = 'pg_read_all_data' AND u.rolname = 'grafana_reader') THEN
        REVOKE pg_read_all_data FROM grafana_reader;
    END IF;
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO stadtpuls_ingest, stadtpuls_api, stadtpuls_grafana;

-- ingest: the batch writer (staging tables are TEMP, created LIKE the targets: SELECT on them) and the registry
GRANT SELECT ON sites, devices TO stadtpuls_ingest;
GRANT SELECT, INSERT ON uplinks, bin_levels, parking_events, passenger_counts, environment_readings
    TO stadtpuls_ingest;
GRANT SELECT, INSERT, UPDATE ON dead_letters, device_state TO stadtpuls_ingest;
GRANT SELECT, INSERT, DELETE ON fcnt_gaps TO stadtpuls_ingest;
GRANT USAGE ON SEQUENCE dead_letters_id_seq TO stadtpuls_ingest;
-- script codecs (0005): the registry loads the scripts, the writer keeps their decoded objects
GRANT SELECT ON codec_scripts TO stadtpuls_ingest;
GRANT SELECT, INSERT ON uplink_decoded TO stadtpuls_ingest;

-- api: reads for every route, writes configuration only
GRANT SELECT ON uplinks, bin_levels, parking_events, passenger_counts, environment_readings, dead_letters,
    fcnt_gaps, device_state, schema_migrations,
    uplinks_hourly, bin_levels_hourly, parking_hourly, passengers_hourly, environment_hourly
    TO stadtpuls_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON sites, devices TO stadtpuls_api;
GRANT SELECT, INSERT, UPDATE ON api_keys TO stadtpuls_api;
-- a device may name a stored script codec; a registry import may set a script's readings map
GRANT SELECT, UPDATE ON codec_scripts TO stadtpuls_api;
GRANT SELECT ON uplink_decoded TO stadtpuls_api;

-- grafana: what the dashboards (dashboards/) query, nothing else
GRANT SELECT ON sites, devices, uplinks, bin_levels, parking_events, passenger_counts, dead_letters, fcnt_gaps,
    uplinks_hourly, bin_levels_hourly, parking_hourly, passengers_hourly
    TO stadtpuls_grafana;
