-- Tenants: the municipalities one hub serves. Every site, device and API key belongs to one tenant (its `tenant`
-- column, the tenant's slug); an existing one-town database becomes tenant `default` with every row kept.
--
-- A tenant's per-town fields are null where the town takes the hub's setting (STADTPULS_TIMEZONE,
-- STADTPULS_DEPOT_LAT/LON, STADTPULS_SERVICE_DAYS, STADTPULS_PICKUP_START_HOUR, ...): a one-town install changes
-- nothing by this migration.
--
-- Readings, uplinks, alerts and the rest belong to the tenant of their device (or site): DevEUIs and site ids are
-- unique across the hub (one network serves all towns), so the ingest needs no extra work per uplink and a reading
-- never names its tenant twice.

CREATE TABLE IF NOT EXISTS tenants (
    slug              text PRIMARY KEY CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    name              text NOT NULL CHECK (name <> '' AND name !~ '[[:cntrl:]]'),
    timezone          text,                          -- IANA name; null: STADTPULS_TIMEZONE
    depots            jsonb CHECK (depots IS NULL OR jsonb_typeof(depots) = 'array'),  -- [{name, lat, lon}]
    service_days      smallint[] CHECK (service_days IS NULL OR service_days <@ ARRAY[0, 1, 2, 3, 4, 5, 6]::smallint[]),
    pickup_start_hour real CHECK (pickup_start_hour >= 0 AND pickup_start_hour < 24),
    brand_name        text CHECK (brand_name IS NULL OR brand_name !~ '[[:cntrl:]]'),  -- public pages' title
    logo_url          text CHECK (logo_url IS NULL OR logo_url ~ '^(https://|/)[^\s"''<>]*$'),
    colour            text CHECK (colour IS NULL OR colour ~ '^#[0-9a-fA-F]{6}$'),
    db_role           text UNIQUE,                   -- the town's own database reader (its Grafana datasource)
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (slug, name) VALUES ('default', 'default') ON CONFLICT (slug) DO NOTHING;

ALTER TABLE sites ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default'
    REFERENCES tenants (slug) ON UPDATE CASCADE;
ALTER TABLE devices ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default'
    REFERENCES tenants (slug) ON UPDATE CASCADE;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default'
    REFERENCES tenants (slug) ON UPDATE CASCADE;
CREATE INDEX IF NOT EXISTS sites_tenant_idx ON sites (tenant, kind);
CREATE INDEX IF NOT EXISTS devices_tenant_idx ON devices (tenant);

GRANT SELECT ON tenants TO stadtpuls_ingest;
GRANT SELECT, INSERT, UPDATE ON tenants TO stadtpuls_api;
