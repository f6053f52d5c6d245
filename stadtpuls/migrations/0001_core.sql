-- Core schema: configuration (sites, devices, keys), raw uplinks, domain readings, dead letters, frame counters.
-- Time is part of every unique key of a time-series table, so the same tables can become hypertables.

CREATE TABLE IF NOT EXISTS sites (
    site_id       text PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('bin', 'lot', 'space', 'line', 'vehicle', 'stop', 'station')),
    name          text NOT NULL DEFAULT '',
    parent_id     text REFERENCES sites (site_id) ON DELETE CASCADE,
    lat           double precision CHECK (lat BETWEEN -90 AND 90),
    lon           double precision CHECK (lon BETWEEN -180 AND 180),
    waste_type    text,                      -- bin: residual, paper, packaging, organic, glass
    depth_mm      integer CHECK (depth_mm > 0),   -- bin: sensor to bottom (empty)
    full_mm       integer CHECK (full_mm >= 0),   -- bin: sensor to the level counted as 100 %
    volume_l      integer CHECK (volume_l > 0),
    threshold_pct real CHECK (threshold_pct BETWEEN 0 AND 100),
    capacity      integer CHECK (capacity >= 0), -- lot: spaces; vehicle: passengers
    seq           integer,                   -- stop: order along its line
    params        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sites_kind_idx ON sites (kind);
CREATE INDEX IF NOT EXISTS sites_parent_idx ON sites (parent_id);

CREATE TABLE IF NOT EXISTS devices (
    dev_eui           text PRIMARY KEY CHECK (dev_eui ~ '^[0-9a-f]{16}$'),
    codec             text NOT NULL,
    name              text NOT NULL DEFAULT '',
    site_id           text REFERENCES sites (site_id) ON DELETE SET NULL,
    lns_device_id     text,                  -- The Things Stack end_device_ids.device_id
    lat               double precision CHECK (lat BETWEEN -90 AND 90),
    lon               double precision CHECK (lon BETWEEN -180 AND 180),
    report_interval_s integer NOT NULL DEFAULT 3600 CHECK (report_interval_s > 0),
    params            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS devices_lns_device_id_idx ON devices (lns_device_id)
    WHERE lns_device_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS devices_site_idx ON devices (site_id);

CREATE TABLE IF NOT EXISTS api_keys (
    key_id     text PRIMARY KEY,
    name       text NOT NULL DEFAULT '',
    role       text NOT NULL CHECK (role IN ('operator', 'admin')),
    key_hash   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Raw uplinks, one row per uplink; dedup_key is the network server's deduplication id, or a key derived from
-- device, session and frame counter (see ingest/envelopes). Redeliveries hit the primary key.
CREATE TABLE IF NOT EXISTS uplinks (
    time        timestamptz NOT NULL,        -- network server receive time
    dedup_key   uuid NOT NULL,
    dev_eui     text NOT NULL,
    f_cnt       bigint,
    f_port      smallint,
    payload     bytea,
    rssi        real,                        -- best gateway
    snr         real,
    dr          smallint,
    sf          smallint,
    frequency   bigint,
    gateways    smallint NOT NULL DEFAULT 0,
    gateway_id  text,
    lns         text NOT NULL,               -- tts | chirpstack-v4 | chirpstack-v3
    simulated   boolean NOT NULL DEFAULT false,
    received_at timestamptz NOT NULL DEFAULT now(),  -- hub receive time
    PRIMARY KEY (dedup_key, time)
);
CREATE INDEX IF NOT EXISTS uplinks_dev_time_idx ON uplinks (dev_eui, time DESC);

CREATE TABLE IF NOT EXISTS bin_levels (
    time          timestamptz NOT NULL,
    dev_eui       text NOT NULL,
    site_id       text,
    distance_mm   real,
    fill_pct      real,
    temperature_c real,
    battery_v     real,
    battery_pct   real,
    PRIMARY KEY (dev_eui, time)
);
CREATE INDEX IF NOT EXISTS bin_levels_site_time_idx ON bin_levels (site_id, time DESC);

CREATE TABLE IF NOT EXISTS parking_events (
    time      timestamptz NOT NULL,
    dev_eui   text NOT NULL,
    site_id   text,                          -- the space
    lot_id    text,
    occupied  boolean NOT NULL,
    battery_v real,
    PRIMARY KEY (dev_eui, time)
);
CREATE INDEX IF NOT EXISTS parking_events_lot_time_idx ON parking_events (lot_id, time DESC);

CREATE TABLE IF NOT EXISTS passenger_counts (
    time      timestamptz NOT NULL,
    dev_eui   text NOT NULL,
    site_id   text,                          -- the vehicle
    line_id   text,
    stop_id   text,
    pax_in    integer,
    pax_out   integer,
    pax_count integer,                       -- people present (Wi-Fi/BLE counters)
    PRIMARY KEY (dev_eui, time)
);
CREATE INDEX IF NOT EXISTS passenger_counts_line_time_idx ON passenger_counts (line_id, time DESC);

CREATE TABLE IF NOT EXISTS environment_readings (
    time          timestamptz NOT NULL,
    dev_eui       text NOT NULL,
    site_id       text,
    temperature_c real,
    humidity_pct  real,
    co2_ppm       real,
    light_lux     real,
    motion        integer,
    battery_v     real,
    PRIMARY KEY (dev_eui, time)
);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text,
    stage       text NOT NULL,               -- envelope | device | codec | database | size
    reason      text NOT NULL,
    dev_eui     text,
    lns         text,
    payload     bytea
);
CREATE INDEX IF NOT EXISTS dead_letters_received_idx ON dead_letters (received_at DESC);
CREATE INDEX IF NOT EXISTS dead_letters_stage_idx ON dead_letters (stage, received_at DESC);

-- Missing frame-counter ranges per device (joins and counter resets are not gaps).
CREATE TABLE IF NOT EXISTS fcnt_gaps (
    time        timestamptz NOT NULL,        -- reading time of the uplink after the gap
    dev_eui     text NOT NULL,
    f_cnt_from  bigint NOT NULL,             -- first missing
    f_cnt_to    bigint NOT NULL,             -- last missing
    missing     bigint GENERATED ALWAYS AS (f_cnt_to - f_cnt_from + 1) STORED,
    detected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dev_eui, f_cnt_from, time)
);

CREATE TABLE IF NOT EXISTS device_state (
    dev_eui    text PRIMARY KEY,
    last_f_cnt bigint,
    last_time  timestamptz,
    session    text,
    last_join  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
