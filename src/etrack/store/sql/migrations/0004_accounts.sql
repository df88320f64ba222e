-- 0004: several eTrac accounts in one installation (ETRACK_ACCOUNTS_FILE).
-- Accounts themselves are configured in a file; the database keeps what
-- every process must agree on: which account sees each plate, the plates
-- that moved between accounts, and each account's health.

-- The account whose fetch of latest positions last listed the plate; NULL
-- for plates stored before accounts existed (they belong to the first one).
ALTER TABLE terminals ADD COLUMN account text;
CREATE INDEX terminals_account_idx ON terminals (account);

-- A plate seen by another account than before: history stays where it is,
-- new data comes from the new account.
CREATE TABLE terminal_moves (
    id            bigserial PRIMARY KEY,
    placa         text NOT NULL,
    from_account  text NOT NULL,
    to_account    text NOT NULL,
    moved_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX terminal_moves_placa_idx ON terminal_moves (placa, moved_at DESC);

-- Health of each account, shared by every worker: an account whose
-- credentials were refused is 'failing' and left alone until retry_at, or
-- until its credentials change (fingerprint: a digest, never the key).
CREATE TABLE accounts (
    name             text PRIMARY KEY,
    state            text NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'failing')),
    reason           text,
    fingerprint      text,
    failing_since    timestamptz,
    retry_at         timestamptz,
    last_success_at  timestamptz,
    last_check_at    timestamptz
);
