-- Plain PostgreSQL: daily rollups are tables too, recomputed from the hourly rows of the local days a refresh
-- touched. Then the rollups are built for the readings already stored.
CREATE TABLE IF NOT EXISTS parking_lot_daily (
    bucket       timestamptz NOT NULL,       -- local midnight, reporting time zone
    lot_id       text NOT NULL,
    occupied_s   double precision NOT NULL,
    free_s       double precision NOT NULL,
    occupied_end integer NOT NULL,           -- at the end of the day's last hour with a row (last_hour)
    free_end     integer NOT NULL,
    last_hour    timestamptz NOT NULL,
    free_min     integer NOT NULL,           -- over the hours with a row
    hours        integer NOT NULL,           -- hours with a row
    events       bigint NOT NULL,
    PRIMARY KEY (lot_id, bucket)
);

CREATE TABLE IF NOT EXISTS line_load_daily (
    bucket       timestamptz NOT NULL,
    line_id      text NOT NULL,
    on_board_s   double precision NOT NULL,
    on_board_end integer NOT NULL,
    vehicles_end integer NOT NULL,
    last_hour    timestamptz NOT NULL,
    pax_in       bigint NOT NULL,
    pax_out      bigint NOT NULL,
    readings     bigint NOT NULL,
    hours        integer NOT NULL,
    PRIMARY KEY (line_id, bucket)
);

CREATE OR REPLACE FUNCTION rollup_refresh_daily(p_kind text, p_key text, p_from timestamptz, p_to timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := rollup_floor(p_from, interval '1 day', @TZ@);
    hi timestamptz := rollup_bucket_end(rollup_floor(p_to - interval '1 microsecond', interval '1 day', @TZ@),
                                        interval '1 day', @TZ@);
BEGIN
    IF p_kind = 'parking_lot' THEN
        DELETE FROM parking_lot_daily WHERE lot_id = p_key AND bucket >= lo AND bucket < hi;
        INSERT INTO parking_lot_daily
        SELECT rollup_floor(bucket, interval '1 day', @TZ@), lot_id, sum(occupied_s), sum(free_s),
               (array_agg(occupied_end ORDER BY bucket DESC))[1], (array_agg(free_end ORDER BY bucket DESC))[1],
               max(bucket), min(free_min), count(*), sum(events)
        FROM parking_lot_hourly WHERE lot_id = p_key AND bucket >= lo AND bucket < hi GROUP BY 1, 2;
    ELSE
        DELETE FROM line_load_daily WHERE line_id = p_key AND bucket >= lo AND bucket < hi;
        INSERT INTO line_load_daily
        SELECT rollup_floor(bucket, interval '1 day', @TZ@), line_id, sum(on_board_s),
               (array_agg(on_board_end ORDER BY bucket DESC))[1], (array_agg(vehicles_end ORDER BY bucket DESC))[1],
               max(bucket), sum(pax_in), sum(pax_out), sum(readings), count(*)
        FROM line_load_hourly WHERE line_id = p_key AND bucket >= lo AND bucket < hi GROUP BY 1, 2;
    END IF;
END $$;

GRANT SELECT, INSERT, UPDATE, DELETE ON parking_lot_daily, line_load_daily TO stadtpuls_ingest;
GRANT SELECT ON parking_lot_daily, line_load_daily TO stadtpuls_api;

SELECT rollups_build();
