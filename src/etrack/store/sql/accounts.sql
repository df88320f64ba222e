-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- name: accounts_claim_plates
-- The account `account` lists these plates among its vehicles: plates seen
-- by nobody yet become its own; a plate another account had is moved, and
-- the move is logged. Plates not in terminals yet are left to ingest.
WITH previous AS (
    SELECT placa, account FROM terminals
    WHERE placa = ANY(%(plates)s::text[]) AND account IS DISTINCT FROM %(account)s
    FOR UPDATE
), claimed AS (
    UPDATE terminals t SET account = %(account)s
    FROM previous p WHERE t.placa = p.placa
    RETURNING t.placa, p.account AS from_account
)
INSERT INTO terminal_moves (placa, from_account, to_account)
SELECT placa, from_account, %(account)s FROM claimed WHERE from_account IS NOT NULL

-- name: accounts_adopt_plates
-- Plates fetched through `account` (history, one plate) that no account
-- has listed yet; a plate another account lists is left to that account.
UPDATE terminals SET account = %(account)s
WHERE placa = ANY(%(plates)s::text[]) AND account IS NULL

-- name: accounts_plates
-- The plates of one account; plates stored before accounts existed
-- (account NULL) belong to the first account, `fallback`.
SELECT placa FROM terminals
WHERE COALESCE(account, %(fallback)s) = ANY(%(accounts)s::text[])
ORDER BY placa

-- name: scope_plates
-- The plates of a scope (etrack.access.principal.Scope): its accounts, fleets
-- and plates intersect; NULL at a level is no limit there.
SELECT placa FROM terminals
WHERE (%(accounts)s::text[] IS NULL OR COALESCE(account, %(fallback)s) = ANY(%(accounts)s::text[]))
  AND (%(fleets)s::text[] IS NULL OR frota = ANY(%(fleets)s::text[]))
  AND (%(plates)s::text[] IS NULL OR placa = ANY(%(plates)s::text[]))
ORDER BY placa

-- name: accounts_plate_owners
SELECT placa, account FROM terminals WHERE placa = ANY(%(plates)s::text[])

-- name: accounts_mark_ok
INSERT INTO accounts (name, state, fingerprint, last_success_at, last_check_at)
VALUES (%(account)s, 'ok', %(fingerprint)s, now(), now())
ON CONFLICT (name) DO UPDATE SET
    state = 'ok', reason = NULL, failing_since = NULL, retry_at = NULL,
    fingerprint = EXCLUDED.fingerprint, last_success_at = now(), last_check_at = now()

-- name: accounts_mark_failing
-- Credentials refused: left alone for `retry_s` seconds (or until its
-- fingerprint changes); failing_since keeps the first failure.
INSERT INTO accounts (name, state, reason, fingerprint, failing_since, retry_at, last_check_at)
VALUES (%(account)s, 'failing', %(reason)s, %(fingerprint)s, now(),
        now() + make_interval(secs => %(retry_s)s), now())
ON CONFLICT (name) DO UPDATE SET
    state = 'failing', reason = EXCLUDED.reason, fingerprint = EXCLUDED.fingerprint,
    failing_since = COALESCE(accounts.failing_since, now()),
    retry_at = EXCLUDED.retry_at, last_check_at = now()

-- name: accounts_states
-- Every account with a recorded state, its fleet size and whether it is due
-- for a try (ok, or failing and past retry_at).
SELECT a.name, a.state, a.reason, a.fingerprint, a.failing_since, a.retry_at,
       a.last_success_at, a.last_check_at, (a.retry_at IS NULL OR a.retry_at <= now()) AS due,
       (SELECT count(*) FROM terminals t
        WHERE COALESCE(t.account, %(fallback)s) = a.name) AS vehicles
FROM accounts a
ORDER BY a.name

-- name: accounts_fleet_sizes
SELECT COALESCE(account, %(fallback)s) AS name, count(*) AS vehicles
FROM terminals GROUP BY 1
