-- 0015: scheduled reports (etrack/reports/, etrack/jobs/reports.py, docs/reports.md).
--
-- A schedule sends one report kind for each complete period (the previous
-- day, ISO week or month in its time zone) at a local time, by e-mail and/or
-- to a webhook. report_runs holds one row per schedule and period: its
-- primary key is what makes a period go out once with any number of workers.

CREATE TABLE report_schedules (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL,
    every        text NOT NULL CHECK (every IN ('daily', 'weekly', 'monthly')),
    at_local     time NOT NULL DEFAULT '07:00',
    timezone     text NOT NULL,
    emails       text[] NOT NULL DEFAULT '{}',
    webhook_url  text,
    -- Signs the webhook's body (X-Etrack-Signature, as the alerts' webhooks).
    secret       text,
    formats      text[] NOT NULL DEFAULT '{xlsx}',
    -- Scope: some plates, or one fleet, or (both NULL) every vehicle of the account.
    plates       text[],
    fleet        text,
    account      text,
    by_day       boolean NOT NULL DEFAULT false,
    csv_dialect  text NOT NULL DEFAULT 'excel-br' CHECK (csv_dialect IN ('excel-br', 'rfc4180')),
    lang         text NOT NULL DEFAULT 'pt-BR' CHECK (lang IN ('pt-BR', 'en')),
    active       boolean NOT NULL DEFAULT true,
    -- The first period it sends: the one running when it was created, never
    -- one from before it existed.
    first_period date NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(emails) > 0 OR webhook_url IS NOT NULL)
);

CREATE TABLE report_runs (
    schedule_id  bigint NOT NULL REFERENCES report_schedules (id) ON DELETE CASCADE,
    period_start date NOT NULL,
    period_end   date NOT NULL,
    state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    job_id       bigint,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    queued_at    timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    PRIMARY KEY (schedule_id, period_start)
);

COMMENT ON TABLE report_runs IS
    'One row per report schedule and period: inserted once (the key), sent once';
