-- Compact layout (issue 24): fewer bytes per reading on disk, every row kept.
--
-- 1. The dedup key is stored in 64 bits: dedup_key_of(uuid) XORs the two halves of the 16-byte key (the same
--    function as stadtpuls.ingest.envelopes.keys.stored_keys). The primary key of uplinks and uplink_decoded
--    becomes (dev_eui, time, dedup_key): a redelivered uplink (same network-server id or derived key, same device
--    and time) hits it as before, distinct uplinks differ in time or in their key. It also serves the per-device
--    time scans, so the (dev_eui, time) indexes beside it go.
-- 2. TimescaleDB: uplinks get 7-day chunks (from the next chunk on; a compressed batch holds up to 1,000 rows of a
--    device, and one day of a device is a few dozen), and each reading table is segmented by its device and the
--    device's placement (site, lot or line: one value per device, stored once per batch instead of in each row, and
--    indexed in the compressed chunks for the queries by lot and line), ordered by time. Existing compressed chunks
--    of the reading tables keep their settings until they are compressed again.
-- 3. A unique key of a compressed hypertable cannot change: the uplinks' compression policy is removed, its chunks
--    are decompressed and compression is switched off for the change, then switched on again with the policy (it
--    compresses the old chunks again on its next runs).
--
-- The view town.uplinks (0016) selects every column, so it is dropped for the change and created again.

CREATE OR REPLACE FUNCTION dedup_key_of(key uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (('x' || left(replace(key::text, '-', ''), 16))::bit(64)
            # ('x' || right(replace(key::text, '-', ''), 16))::bit(64))::bigint
$$;

DO $$
DECLARE
    timescale boolean := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb');
    t text;
BEGIN
    IF (SELECT array_agg(a.attname::text ORDER BY k.ord)
        FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = 'public.uplinks'::regclass AND i.indisprimary) = ARRAY['dev_eui', 'time', 'dedup_key'] THEN
        RETURN;  -- converted already
    END IF;
    IF timescale THEN
        PERFORM remove_compression_policy('uplinks', if_exists => true);
        PERFORM decompress_chunk(c, if_compressed => true) FROM show_chunks('uplinks') c;
        ALTER TABLE uplinks SET (timescaledb.compress = false);
    END IF;

    DROP VIEW IF EXISTS town.uplinks;
    FOREACH t IN ARRAY ARRAY['uplinks', 'uplink_decoded'] LOOP
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', t, t || '_pkey');
        IF (SELECT data_type FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = t AND column_name = 'dedup_key') = 'uuid' THEN
            EXECUTE format('ALTER TABLE %I ALTER COLUMN dedup_key TYPE bigint USING dedup_key_of(dedup_key)', t);
        END IF;
        EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (dev_eui, time, dedup_key)', t);
        EXECUTE format('DROP INDEX IF EXISTS %I', t || '_dev_time_idx');
    END LOOP;

    IF timescale THEN
        PERFORM set_chunk_time_interval('uplinks', INTERVAL '7 days');
        ALTER TABLE uplinks SET (timescaledb.compress, timescaledb.compress_segmentby = 'dev_eui',
                                 timescaledb.compress_orderby = 'time DESC, dedup_key');
        PERFORM add_compression_policy('uplinks', make_interval(days => @COMPRESS_AFTER_DAYS@),
                                       if_not_exists => true);
        -- The readings' new segmenting is an optimisation: a server that refuses to change the settings of a table
        -- with compressed chunks keeps the old ones (a notice says so) rather than failing the migration.
        FOREACH t IN ARRAY ARRAY['bin_levels:dev_eui, site_id', 'parking_events:dev_eui, site_id, lot_id',
                                 'passenger_counts:dev_eui, site_id, line_id', 'environment_readings:dev_eui, site_id']
        LOOP
            BEGIN
                EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, '
                               'timescaledb.compress_orderby = %L)', split_part(t, ':', 1), split_part(t, ':', 2),
                               'time DESC');
            EXCEPTION WHEN others THEN
                RAISE NOTICE 'compression settings of % kept: %', split_part(t, ':', 1), SQLERRM;
            END;
        END LOOP;
    END IF;
END $$;

CREATE OR REPLACE VIEW town.uplinks WITH (security_barrier) AS
SELECT * FROM public.uplinks
WHERE dev_eui IN (SELECT dev_eui FROM public.devices WHERE tenant = (SELECT tenant_of_role(current_user)));
GRANT SELECT ON town.uplinks TO stadtpuls_town;
