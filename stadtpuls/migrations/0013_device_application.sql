-- Authentic sources (ingest/authentic.py): the network-server application a device belongs to, `app` or
-- `app@tenant` (The Things Stack application id and tenant, ChirpStack application id). Where it is set, an uplink
-- naming another application is a dead letter at stage `source`.
ALTER TABLE devices ADD COLUMN IF NOT EXISTS lns_application_id text
    CHECK (lns_application_id IS NULL OR lns_application_id ~ '^[^/#+@\s]+(@[^/#+@\s]+)?$');
