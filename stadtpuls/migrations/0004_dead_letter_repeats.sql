-- Dead letters once per distinct message: a rejected message that is delivered again (its acknowledgement lost in
-- a broker restart or a killed worker, or sent twice) adds to `repeats` instead of adding a row.
CREATE OR REPLACE FUNCTION dead_letter_key(topic text, payload bytea) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT md5(length(coalesce(topic, ''))::text || ':' || coalesce(topic, '') || ':'
                     || encode(coalesce(payload, ''::bytea), 'hex'))::uuid $$;

ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS message_key uuid;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS repeats integer NOT NULL DEFAULT 1;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS last_received_at timestamptz;

-- rows written before: the first of each message stays, with the count and last time of all its copies
UPDATE dead_letters SET message_key = dead_letter_key(topic, payload) WHERE message_key IS NULL;
UPDATE dead_letters d SET repeats = g.n, last_received_at = g.last
FROM (SELECT min(id) AS id, count(*) AS n, max(received_at) AS last
      FROM dead_letters GROUP BY message_key HAVING count(*) > 1) g
WHERE d.id = g.id;
DELETE FROM dead_letters d
USING (SELECT message_key, min(id) AS keep FROM dead_letters GROUP BY message_key HAVING count(*) > 1) g
WHERE d.message_key = g.message_key AND d.id <> g.keep;

CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_message_key_idx ON dead_letters (message_key);
