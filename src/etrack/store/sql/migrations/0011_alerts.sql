-- 0011: alert rules and their exactly-once delivery (etrack/alerts/, docs/alerts.md).
--
-- `alert_rules`: what to send (kinds, optional plates or fleets, a minimum
-- value) and where (a webhook with its HMAC secret, or e-mail addresses).
-- Only events starting after `created_at` are sent (a new rule does not
-- flood its receiver with the past; `etrack alerts replay` does on purpose).
CREATE TABLE alert_rules (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    kinds       text[] NOT NULL CHECK (cardinality(kinds) > 0),
    plates      text[],
    fleets      text[],
    min_value   double precision,
    channel     text NOT NULL CHECK (channel IN ('webhook', 'email')),
    url         text,
    secret      text,
    emails      text[],
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (channel <> 'webhook' OR (url IS NOT NULL AND secret IS NOT NULL)),
    CHECK (channel <> 'email' OR coalesce(cardinality(emails), 0) > 0)
);

-- One row per (rule, event) ever queued: its primary key is what makes a
-- delivery happen once, however many workers, recomputations or replays
-- run (each inserts with ON CONFLICT DO NOTHING; only the winner defers the
-- job). 'queued' until a 2xx (or an accepted e-mail) makes it 'sent', or the
-- last attempt makes it 'failed'. job_id is the Procrastinate job carrying it:
-- a 'queued' row whose job is not waiting or running lost it (a crash between
-- the insert and the defer) and is deferred again.
-- The event's vehicle, kind and span are kept on the row, and the row
-- outlives its event (no foreign key to events): an event id is derived from
-- its start, so when fuller history moves a start (the live samples saw the
-- run begin a minute later) the recompute replaces the event by another id;
-- a new event overlapping one already sent or queued for the same rule,
-- vehicle and kind is that event again, and is not queued. A queued row
-- whose event is gone when its job runs becomes 'superseded'.
CREATE TABLE alert_sends (
    rule        text NOT NULL REFERENCES alert_rules (name) ON DELETE CASCADE,
    event_id    uuid NOT NULL,
    placa       text NOT NULL,
    kind        text NOT NULL,
    start_ts    timestamptz NOT NULL,
    end_ts      timestamptz,
    state       text NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'sent', 'failed', 'superseded')),
    job_id      bigint,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    queued_at   timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    PRIMARY KEY (rule, event_id)
);

-- The re-defer of lost jobs reads only the queued rows (few, at any time).
CREATE INDEX alert_sends_queued_idx ON alert_sends (rule, event_id) WHERE state = 'queued';
-- A new event looks for an overlapping send of the same rule, vehicle and kind.
CREATE INDEX alert_sends_span_idx ON alert_sends (rule, placa, kind, start_ts);

-- Every attempt, kept after its event is gone (no foreign key to events):
-- the history of what was sent where.
CREATE TABLE deliveries (
    id           bigserial PRIMARY KEY,
    rule         text NOT NULL REFERENCES alert_rules (name) ON DELETE CASCADE,
    event_id     uuid NOT NULL,
    attempt      integer NOT NULL,
    status       text NOT NULL CHECK (status IN ('sent', 'failed')),
    http_status  integer,
    error        text,
    at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX deliveries_rule_idx ON deliveries (rule, event_id, at);
