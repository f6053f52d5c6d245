-- Each town's Grafana reads only its own town, enforced by the database. A town's reader role
-- (`stadtpuls_grafana_<slug>`, made by `stadtpuls tenants grafana-role SLUG`, recorded in tenants.db_role) is a
-- member of the NOLOGIN group `stadtpuls_town`, which holds the grants; what a member sees is decided by
-- `tenant_of_role(current_user)`, the tenant whose db_role it is (none: it sees no row at all).
--
--   configuration and plain tables (sites, devices, dead_letters, fcnt_gaps, alerts): row-level security.
--       Policy `hub` (every role) admits all rows to a role that is not a member of stadtpuls_town: the ingest,
--       the API, the hub's Grafana and the alerts service see and write everything as before; the condition
--       holds no column, so it is computed once per statement (an init plan) and each row only checks the
--       flag. COPY FROM is refused on these tables for every role but the owner: the ingest writes dead letters
--       and gaps from its staging tables with INSERT ... SELECT, and must keep doing so. Policy `town`
--       (stadtpuls_town, SELECT only) admits the town's rows: sites and devices by their tenant, readings-like rows
--       through their device (alerts also through their site); dead letters of unknown devices and hub alerts
--       belong to no town.
--   time series (uplinks, bin_levels, parking_events, passenger_counts, parking_lot_hourly) and the hourly
--       aggregates: the group has no privilege on them; it reads security-barrier views of the same names in
--       schema `town`, owned by the schema owner, filtered on the same function through the devices (lots:
--       through their site). A reader role's search_path is `town, public`, so the dashboards' SQL is the same
--       for every town. TimescaleDB: row-level security cannot be enabled on a hypertable that uses compression,
--       is not carried to its chunks (which do get its grants, so a chunk read directly would bypass the
--       policies) and cannot be set on a continuous aggregate; the views work on hypertables, compressed chunks
--       and continuous aggregates alike, so this file is the same for both modes.
--   alert_rules: hub-wide rule definitions (no town data), readable by every town.
--
-- The owner (migrations, `stadtpuls` commands run as the owner) is not subject to the policies (no FORCE).
-- A town reader never writes: it holds SELECT only, and the `town` policies are FOR SELECT.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'stadtpuls_town') THEN
        BEGIN
            CREATE ROLE stadtpuls_town NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database on the same server
        END;
    END IF;
END
$$;

-- The tenant whose Grafana reader ``p_role`` is (null: none). Security definer: the town roles cannot read
-- tenants; callers pass current_user (inside a security definer function current_user is the owner).
CREATE OR REPLACE FUNCTION tenant_of_role(p_role name) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT slug FROM public.tenants WHERE db_role = p_role::text
$$;
REVOKE EXECUTE ON FUNCTION tenant_of_role(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_of_role(name) TO stadtpuls_town;

-- Whether the querying role is a town reader (then only the `town` policies admit rows).
CREATE OR REPLACE FUNCTION is_town_reader() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT pg_has_role(current_user, 'stadtpuls_town', 'MEMBER') $$;

-- Row-level security on the plain tables the dashboards query.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sites', 'devices', 'dead_letters', 'fcnt_gaps', 'alerts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS hub ON %I', t);
        EXECUTE format('CREATE POLICY hub ON %I USING ((SELECT NOT is_town_reader()))'
                       ' WITH CHECK ((SELECT NOT is_town_reader()))', t);
        EXECUTE format('DROP POLICY IF EXISTS town ON %I', t);
    END LOOP;
END
$$;

CREATE POLICY town ON sites FOR SELECT TO stadtpuls_town
    USING (tenant = (SELECT tenant_of_role(current_user)));
CREATE POLICY town ON devices FOR SELECT TO stadtpuls_town
    USING (tenant = (SELECT tenant_of_role(current_user)));
CREATE POLICY town ON dead_letters FOR SELECT TO stadtpuls_town
    USING (dev_eui IN (SELECT d.dev_eui FROM devices d WHERE d.tenant = (SELECT tenant_of_role(current_user))));
CREATE POLICY town ON fcnt_gaps FOR SELECT TO stadtpuls_town
    USING (dev_eui IN (SELECT d.dev_eui FROM devices d WHERE d.tenant = (SELECT tenant_of_role(current_user))));
CREATE POLICY town ON alerts FOR SELECT TO stadtpuls_town
    USING (dev_eui IN (SELECT d.dev_eui FROM devices d WHERE d.tenant = (SELECT tenant_of_role(current_user)))
           OR site_id IN (SELECT s.site_id FROM sites s WHERE s.tenant = (SELECT tenant_of_role(current_user))));

-- The time series and aggregates as the town sees them. Inside a view the tables are read with the owner's
-- rights (no policy applies), current_user is still the querying role. A view keeps the columns its table had
-- here: a later migration that adds or changes a column recreates the view (tests/stadtpuls/test_tenant_rls.py
-- compares their columns).
CREATE SCHEMA IF NOT EXISTS town;

CREATE OR REPLACE VIEW town.uplinks WITH (security_barrier) AS
SELECT * FROM public.uplinks
WHERE dev_eui IN (SELECT dev_eui FROM public.devices WHERE tenant = (SELECT tenant_of_role(current_user)));

CREATE OR REPLACE VIEW town.bin_levels WITH (security_barrier) AS
SELECT * FROM public.bin_levels
WHERE dev_eui IN (SELECT dev_eui FROM public.devices WHERE tenant = (SELECT tenant_of_role(current_user)));

CREATE OR REPLACE VIEW town.parking_events WITH (security_barrier) AS
SELECT * FROM public.parking_events
WHERE dev_eui IN (SELECT dev_eui FROM public.devices WHERE tenant = (SELECT tenant_of_role(current_user)));

CREATE OR REPLACE VIEW town.passenger_counts WITH (security_barrier) AS
SELECT * FROM public.passenger_counts
WHERE dev_eui IN (SELECT dev_eui FROM public.devices WHERE tenant = (SELECT tenant_of_role(current_user)));

CREATE OR REPLACE VIEW town.uplinks_hourly WITH (security_barrier) AS
SELECT * FROM public.uplinks_hourly
WHERE dev_eui IN (SELECT dev_eui FROM public.devices WHERE tenant = (SELECT tenant_of_role(current_user)));

CREATE OR REPLACE VIEW town.bin_levels_hourly WITH (security_barrier) AS
SELECT * FROM public.bin_levels_hourly
WHERE dev_eui IN (SELECT dev_eui FROM public.devices WHERE tenant = (SELECT tenant_of_role(current_user)));

CREATE OR REPLACE VIEW town.passengers_hourly WITH (security_barrier) AS
SELECT * FROM public.passengers_hourly
WHERE dev_eui IN (SELECT dev_eui FROM public.devices WHERE tenant = (SELECT tenant_of_role(current_user)));

CREATE OR REPLACE VIEW town.parking_lot_hourly WITH (security_barrier) AS
SELECT * FROM public.parking_lot_hourly
WHERE lot_id IN (SELECT site_id FROM public.sites WHERE tenant = (SELECT tenant_of_role(current_user)));

-- The town group: what the dashboards query, nothing else (the time series only through `town`).
REVOKE ALL ON SCHEMA town FROM PUBLIC;
GRANT USAGE ON SCHEMA public, town TO stadtpuls_town;
GRANT SELECT ON sites, devices, dead_letters, fcnt_gaps, alerts, alert_rules TO stadtpuls_town;
GRANT SELECT ON town.uplinks, town.bin_levels, town.parking_events, town.passenger_counts, town.uplinks_hourly,
    town.bin_levels_hourly, town.passengers_hourly, town.parking_lot_hourly TO stadtpuls_town;
