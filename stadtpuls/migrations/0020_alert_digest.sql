-- The daily digest: a channel may take one summary a day at a local hour (`digest_hour`), through the same outbox
-- as the state changes. A digest is a notifications row without an event: `digest_day` (the town's local date)
-- and `digest` (what the day was at the digest hour, written when it is queued, so a retry or a resend sends the
-- same text). One per channel and day (a unique key): a restart around the digest hour queues none twice.
-- A channel with `digest_only` takes no notification per state change, only its digest.

ALTER TABLE notification_channels
    ADD COLUMN digest_hour smallint CHECK (digest_hour BETWEEN 0 AND 23),
    ADD COLUMN digest_only boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT notification_channels_digest_only CHECK (NOT digest_only OR digest_hour IS NOT NULL);

ALTER TABLE notifications
    ALTER COLUMN event_id DROP NOT NULL,
    ADD COLUMN digest_day date,
    ADD COLUMN digest jsonb,
    ADD CONSTRAINT notifications_event_or_digest CHECK ((event_id IS NULL) = (digest_day IS NOT NULL)
                                                       AND (digest_day IS NULL) = (digest IS NULL)),
    ADD CONSTRAINT notifications_one_digest_a_day UNIQUE (channel_id, digest_day);

-- A channel's routing, in one place: the rules it takes (null = all) and its lowest severity. The trigger that
-- queues a state change and the digest (stadtpuls/alerts/digest.py) both ask it.
CREATE OR REPLACE FUNCTION notification_routed(c notification_channels, p_rule_id text, p_severity text)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (c.rules IS NULL OR p_rule_id = ANY (c.rules))
       AND array_position(ARRAY['info', 'warning', 'critical'], p_severity)
           >= array_position(ARRAY['info', 'warning', 'critical'], c.min_severity)
$$;

CREATE OR REPLACE FUNCTION alerts_route_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notifications (event_id, channel_id, next_attempt_at)
    SELECT NEW.event_id, c.channel_id, NEW.time
    FROM alerts a
    JOIN notification_channels c ON c.enabled AND NOT c.digest_only AND notification_routed(c, a.rule_id, a.severity)
    WHERE a.alert_id = NEW.alert_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
