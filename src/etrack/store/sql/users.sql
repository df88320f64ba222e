-- People, API tokens, share links and the audit log
-- (migration 0016; etrack/store/users.py, etrack/access/, etrack/web/auth.py).

-- name: users_count
SELECT count(*) AS n FROM users

-- name: users_add
INSERT INTO users (login, name, password_hash, role, accounts, fleets, can_write)
VALUES (%(login)s, %(name)s, %(password_hash)s, %(role)s, %(accounts)s, %(fleets)s, %(can_write)s)
ON CONFLICT (login) DO NOTHING
RETURNING id

-- name: users_get
-- One user by login, with the secrets the login check needs (never shown).
SELECT id, login, name, role, accounts, fleets, can_write, active, session_epoch,
       created_at, last_login_at, password_hash, totp_secret
FROM users WHERE login = %(login)s

-- name: users_get_by_id
SELECT id, login, name, role, accounts, fleets, can_write, active, session_epoch,
       created_at, last_login_at, password_hash, totp_secret
FROM users WHERE id = %(id)s

-- name: users_list
SELECT id, login, name, role, accounts, fleets, can_write, active, session_epoch,
       created_at, last_login_at, NULL::text AS password_hash,
       CASE WHEN totp_secret IS NULL THEN NULL ELSE '' END AS totp_secret
FROM users ORDER BY login

-- name: users_set_password
-- A new password ends every session made with the old one.
UPDATE users SET password_hash = %(password_hash)s, session_epoch = session_epoch + 1
WHERE login = %(login)s
RETURNING id

-- name: users_set_active
UPDATE users SET active = %(active)s, session_epoch = session_epoch + 1
WHERE login = %(login)s AND active IS DISTINCT FROM %(active)s
RETURNING id

-- name: users_update
UPDATE users
SET role = %(role)s, accounts = %(accounts)s, fleets = %(fleets)s, name = %(name)s,
    can_write = %(can_write)s, session_epoch = session_epoch + 1
WHERE login = %(login)s
  AND (role, accounts, fleets, name, can_write)
      IS DISTINCT FROM (%(role)s, %(accounts)s::text[], %(fleets)s::text[], %(name)s, %(can_write)s)
RETURNING id

-- name: users_set_totp
UPDATE users SET totp_secret = %(secret)s, session_epoch = session_epoch + 1
WHERE login = %(login)s
RETURNING id

-- name: users_rehash
-- A login with a pbkdf2 or plain value (the shortcut): argon2 from now on.
UPDATE users SET password_hash = %(password_hash)s WHERE id = %(id)s

-- name: users_remove
DELETE FROM users WHERE login = %(login)s RETURNING id

-- name: users_touch_login
UPDATE users SET last_login_at = now() WHERE id = %(id)s

-- name: tokens_add
INSERT INTO api_tokens (user_id, token_hash, prefix, label, expires_at)
VALUES (%(user_id)s, %(token_hash)s, %(prefix)s, %(label)s, %(expires_at)s)
RETURNING id

-- name: tokens_owner
-- The active user of a live token (not revoked, not expired).
SELECT t.id AS token_id, t.last_used_at AS token_used_at, u.id, u.login, u.name, u.role, u.accounts, u.fleets, u.can_write,
       u.active, u.session_epoch, u.created_at, u.last_login_at,
       NULL::text AS password_hash, NULL::text AS totp_secret
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL
  AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.active

-- name: tokens_touch
-- Last use, written at most once a minute per token (a polling script
-- would otherwise write on every call).
UPDATE api_tokens SET last_used_at = now(), last_used_from = %(address)s
WHERE id = %(id)s AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
RETURNING id

-- name: tokens_list
SELECT t.id, u.login, t.prefix, t.label, t.created_at, t.expires_at, t.revoked_at,
       t.last_used_at, t.last_used_from
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE %(login)s::text IS NULL OR u.login = %(login)s
ORDER BY t.id

-- name: tokens_revoke
UPDATE api_tokens SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL
RETURNING id

-- name: shares_add
INSERT INTO share_links (token_hash, placa, rota_date, created_by, expires_at)
VALUES (%(token_hash)s, %(placa)s, %(rota_date)s, %(created_by)s, %(expires_at)s)
RETURNING id

-- name: shares_get
-- A live share link by its token's hash; counts the use.
UPDATE share_links SET uses = uses + 1, last_used_at = now()
WHERE token_hash = %(token_hash)s AND revoked_at IS NULL AND expires_at > now()
RETURNING id, placa, rota_date, created_by, created_at, expires_at, revoked_at, last_used_at, uses

-- name: shares_by_id
SELECT id, placa, rota_date, created_by, created_at, expires_at, revoked_at, last_used_at, uses
FROM share_links WHERE id = %(id)s

-- name: shares_list
SELECT id, placa, rota_date, created_by, created_at, expires_at, revoked_at, last_used_at, uses
FROM share_links
WHERE (%(placa)s::text IS NULL OR placa = %(placa)s)
  AND (%(rota_date)s::date IS NULL OR rota_date = %(rota_date)s)
ORDER BY id

-- name: shares_revoke
UPDATE share_links SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL
RETURNING id, placa, rota_date

-- name: audit_add
INSERT INTO audit (actor, address, action, target, ok, detail)
VALUES (%(actor)s, %(address)s, %(action)s, %(target)s, %(ok)s, %(detail)s)

-- name: audit_list
-- The newest first, filtered; `limit` bounds the page (the CSV asks more).
SELECT id, at, actor, address, action, target, ok, detail
FROM audit
WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)
  AND (%(action)s::text IS NULL OR action LIKE %(action)s || '%%')
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
  AND (%(failed)s::boolean IS NULL OR ok = NOT %(failed)s)
ORDER BY at DESC, id DESC
LIMIT %(limit)s

-- name: audit_prune
DELETE FROM audit WHERE at < %(before)s
