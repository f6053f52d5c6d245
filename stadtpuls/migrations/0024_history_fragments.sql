-- The JSON text of a history's closed days (both modes): a lot's occupancy and a line's load at 15-minute and hour
-- buckets, one row per local day, written by the API the first time an answer needs the day (the text 0021's
-- query writes for its buckets) and read back by every later answer, so a year of hours is some 365 texts joined
-- plus the days not kept (api/queries/rollups.py).
--
-- A day's text holds while its quarter-hour and hour rollups do. Those are written only by ``rollup_refresh``
-- (the rollup job, ``rollups_build()``), on both modes (on TimescaleDB too they are tables the job keeps, not
-- continuous aggregates; day buckets, continuous aggregates there, are not kept here). So ``rollup_refresh``
-- deletes every kept day of a key from the day of its span's first reading on, in the transaction that rewrites
-- the rollups, while it holds the key's lock. The API writes a day only under the same lock taken shared (and
-- only if it gets it at once), in a statement that starts once it holds it, and only days that end before the
-- key's first queued span: a day it writes is therefore built from rollups that no refresh is changing, and any
-- later refresh that changes them deletes it.
--
-- ``fingerprint`` names the bucket's JSON expression and its parameters (a lot's capacity): a kept day is read
-- only by answers that would write the same text.
CREATE TABLE IF NOT EXISTS history_fragments (
    kind        text NOT NULL,         -- rollup_dirty.kind: parking_lot | line_load
    key         text NOT NULL,         -- the lot or line
    width       interval NOT NULL,     -- 15 minutes or 1 hour
    tz          text NOT NULL,         -- the answer's time zone (the rollups' own)
    fingerprint text NOT NULL,
    day         timestamptz NOT NULL,  -- local midnight in tz
    buckets     integer NOT NULL,      -- JSON objects in json
    json        text NOT NULL,         -- the day's buckets, comma-separated, without brackets
    PRIMARY KEY (kind, key, width, tz, fingerprint, day)
);
CREATE INDEX IF NOT EXISTS history_fragments_day_idx ON history_fragments (kind, key, day);

GRANT SELECT, INSERT ON history_fragments TO stadtpuls_api;
GRANT SELECT, DELETE ON history_fragments TO stadtpuls_ingest;

-- rollup_refresh (0019) keeps its work under a new name; rollup_refresh calls it, then forgets the kept days its
-- spans can have changed (from the local day of a span's first reading on: a refresh rewrites nothing before it).
-- A later migration that changes how the rollups are refreshed replaces rollup_refresh_rollups, not this.
DO $$
BEGIN
    IF to_regproc('rollup_refresh_rollups') IS NULL THEN
        ALTER FUNCTION rollup_refresh(text, text[], timestamptz[], timestamptz[]) RENAME TO rollup_refresh_rollups;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION rollup_refresh(p_kind text, p_keys text[], p_first timestamptz[], p_last timestamptz[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n integer := rollup_refresh_rollups(p_kind, p_keys, p_first, p_last);  -- holds each key's lock to commit
BEGIN
    DELETE FROM history_fragments f USING unnest(p_keys, p_first) AS u(key, first)
    WHERE f.kind = p_kind AND f.key = u.key AND f.day > u.first - interval '26 hours'  -- (local days: <= 25 h)
      AND f.day >= rollup_floor(u.first, interval '1 day', f.tz);
    RETURN n;
END $$;
