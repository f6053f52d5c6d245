-- Sources (ingest/sources.py): the TTS Storage Integration backfill's cursor per source, the gaps it could not
-- fetch, and the frame-counter gaps that late uplinks (mostly backfilled ones) closed. Small configuration-like
-- tables, the same in both modes; none is a hypertable.

-- The received_at of the newest uplink the backfill of a source stored; a run starts a margin before it.
CREATE TABLE IF NOT EXISTS source_cursors (
    source          text PRIMARY KEY,
    application_id  text NOT NULL,
    cursor          timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Time the backfill could not fetch because the storage no longer kept it (older than its retention).
CREATE TABLE IF NOT EXISTS backfill_gaps (
    source          text NOT NULL,
    application_id  text NOT NULL,
    gap_from        timestamptz NOT NULL,
    gap_to          timestamptz NOT NULL,
    reason          text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, gap_from)
);

-- Frame counters of recorded gaps (fcnt_gaps) that a late uplink filled: what fcnt_gaps no longer lists.
CREATE TABLE IF NOT EXISTS fcnt_gaps_closed (
    dev_eui     text NOT NULL,
    f_cnt       bigint NOT NULL,
    gap_time    timestamptz NOT NULL,      -- the closed gap's time (reading time of the uplink after it)
    closed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dev_eui, f_cnt, gap_time)
);
CREATE INDEX IF NOT EXISTS fcnt_gaps_closed_at_idx ON fcnt_gaps_closed (closed_at DESC);

-- the roles of 0007: the ingest keeps its cursors and gaps, the API shows the closed gaps
GRANT SELECT, INSERT, UPDATE ON source_cursors TO stadtpuls_ingest;
GRANT SELECT, INSERT ON backfill_gaps, fcnt_gaps_closed TO stadtpuls_ingest;
GRANT SELECT ON source_cursors, backfill_gaps, fcnt_gaps_closed TO stadtpuls_api;
