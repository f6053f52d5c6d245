-- Alerts: rules, alerts with their state changes, notification channels and the notification outbox.
-- Configuration and state, not time series: plain tables in both modes. The evaluator (stadtpuls/alerts) writes
-- an alert's state change and, through the trigger below, its notifications in one transaction; the sender
-- delivers the outbox, so a restart neither loses nor repeats a notification.

CREATE TABLE IF NOT EXISTS alert_rules (
    rule_id     text PRIMARY KEY CHECK (rule_id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    kind        text NOT NULL,               -- device_silent | battery_low | radio_worse | frame_loss | bin_full
                                             -- | parking_stuck | ingest_lag | dead_letters (stadtpuls/alerts/kinds.py)
    enabled     boolean NOT NULL DEFAULT true,
    severity    text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    params      jsonb NOT NULL DEFAULT '{}'::jsonb,
    description text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    evaluated_at timestamptz                 -- evaluation time of the rule's last round (its `every_s` cadence)
);

-- One active (open or acknowledged) alert per rule and subject (a device, or a part of the hub).
CREATE TABLE IF NOT EXISTS alerts (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id         text NOT NULL REFERENCES alert_rules (rule_id) ON DELETE CASCADE,
    subject         text NOT NULL,           -- dev_eui, or 'hub'
    dev_eui         text,
    site_id         text,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    state           text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    value           double precision,        -- the measured value when the alert opened
    message         text NOT NULL DEFAULT '',
    opened_at       timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,                    -- key id of the operator key
    ack_note        text,
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_active_idx ON alerts (rule_id, subject) WHERE state <> 'resolved';
CREATE INDEX IF NOT EXISTS alerts_opened_idx ON alerts (opened_at DESC);
CREATE INDEX IF NOT EXISTS alerts_state_idx ON alerts (state, rule_id);

-- Every state change of an alert (its history).
CREATE TABLE IF NOT EXISTS alert_events (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    time     timestamptz NOT NULL,
    state    text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    actor    text,                           -- key id for an acknowledgement, else null (the evaluator)
    note     text
);
CREATE INDEX IF NOT EXISTS alert_events_alert_idx ON alert_events (alert_id, time);

-- Where notifications go: a webhook (HTTP POST, HMAC-SHA256 signature with `secret`) or e-mail addresses.
-- Routing: the rules (null = all) and the lowest severity; quiet hours (local time) hold back all but critical.
CREATE TABLE IF NOT EXISTS notification_channels (
    channel_id   text PRIMARY KEY CHECK (channel_id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    kind         text NOT NULL CHECK (kind IN ('webhook', 'email')),
    target       text NOT NULL,              -- URL, or comma-separated e-mail addresses
    secret       text,                       -- webhook signing secret
    rules        text[],
    min_severity text NOT NULL DEFAULT 'warning' CHECK (min_severity IN ('info', 'warning', 'critical')),
    quiet_from   smallint CHECK (quiet_from BETWEEN 0 AND 23),
    quiet_to     smallint CHECK (quiet_to BETWEEN 0 AND 23),
    enabled      boolean NOT NULL DEFAULT true,
    CHECK (kind <> 'webhook' OR secret IS NOT NULL)
);

-- The outbox: one row per state change and channel. pending -> sent, or dead after the last retry (resend sets
-- it pending again).
CREATE TABLE IF NOT EXISTS notifications (
    notification_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        bigint NOT NULL REFERENCES alert_events (event_id) ON DELETE CASCADE,
    channel_id      text NOT NULL REFERENCES notification_channels (channel_id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz,
    UNIQUE (event_id, channel_id)
);
CREATE INDEX IF NOT EXISTS notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending';

-- Routing in the database: whatever writes a state change also queues its notifications, in its transaction.
CREATE OR REPLACE FUNCTION alerts_route_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notifications (event_id, channel_id, next_attempt_at)
    SELECT NEW.event_id, c.channel_id, NEW.time
    FROM alerts a
    JOIN notification_channels c ON c.enabled
        AND (c.rules IS NULL OR a.rule_id = ANY (c.rules))
        AND array_position(ARRAY['info', 'warning', 'critical'], a.severity)
            >= array_position(ARRAY['info', 'warning', 'critical'], c.min_severity)
    WHERE a.alert_id = NEW.alert_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS alert_events_route ON alert_events;
CREATE TRIGGER alert_events_route AFTER INSERT ON alert_events FOR EACH ROW EXECUTE FUNCTION alerts_route_event();

-- the roles of 0007: the API lists, acknowledges and configures (rules, channels, resends); the dashboards show the
-- active alerts per rule. The alerts service connects as the owner, like migrate.
GRANT SELECT, INSERT, UPDATE, DELETE ON alert_rules, notification_channels TO stadtpuls_api;
GRANT SELECT, INSERT, UPDATE ON alerts, alert_events, notifications TO stadtpuls_api;
GRANT SELECT ON alert_rules, alerts TO stadtpuls_grafana;
