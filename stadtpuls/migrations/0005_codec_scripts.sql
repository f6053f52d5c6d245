-- Script codecs: the JavaScript payload codecs users add (`stadtpuls codecs add`), every version kept, with the
-- examples they are tested against and the readings map that feeds the domain tables; and the objects the
-- scripts decoded, kept with the raw uplinks.
CREATE TABLE IF NOT EXISTS codec_scripts (
    codec_id  text NOT NULL CHECK (codec_id ~ '^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$'),
    version   integer NOT NULL CHECK (version >= 1),
    source    text NOT NULL,
    sha256    text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    examples  jsonb NOT NULL DEFAULT '[]'::jsonb,     -- [{description, f_port, bytes_hex, data?, errors?, warnings?}]
    readings  jsonb NOT NULL DEFAULT '{}'::jsonb,     -- hub quantity -> {field, scale?, values?}
    f_ports   integer[] NOT NULL DEFAULT '{}',        -- the fPorts of the examples
    added_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (codec_id, version)
);

-- The object a script decoded per uplink (the uplink's key and time), its warnings, and which version decoded it.
CREATE TABLE IF NOT EXISTS uplink_decoded (
    time          timestamptz NOT NULL,
    dedup_key     uuid NOT NULL,
    dev_eui       text NOT NULL,
    codec_id      text NOT NULL,
    codec_version integer NOT NULL,
    data          jsonb NOT NULL,
    warnings      jsonb,
    PRIMARY KEY (dedup_key, time)
);
CREATE INDEX IF NOT EXISTS uplink_decoded_dev_time_idx ON uplink_decoded (dev_eui, time DESC);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('uplink_decoded', by_range('time', INTERVAL '1 day'), if_not_exists => true,
                                  migrate_data => true);
        PERFORM add_retention_policy('uplink_decoded', make_interval(days => @RAW_RETENTION_DAYS@),
                                     if_not_exists => true);
    ELSE
        CREATE INDEX IF NOT EXISTS uplink_decoded_time_brin ON uplink_decoded USING brin (time);
    END IF;
END $$;
