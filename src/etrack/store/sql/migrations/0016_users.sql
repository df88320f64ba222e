-- 0016: people and integrations of the web UI (etrack/web/auth.py, docs/users.md).
--
-- A user has a role and a scope (accounts and/or fleets; empty = every vehicle,
-- allowed for admins only). Passwords, API tokens and share links are stored
-- hashed: the clear value is shown once and never kept.

CREATE TABLE users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login           text NOT NULL,
    name            text NOT NULL DEFAULT '',
    -- argon2id (argon2-cffi); the single-admin shortcut may bring a pbkdf2
    -- hash from ETRACK_WEB_PASSWORD. NULL for `api` users (tokens only).
    password_hash   text,
    role            text NOT NULL CHECK (role IN ('admin', 'manager', 'viewer', 'api')),
    accounts        text[] NOT NULL DEFAULT '{}',
    fleets          text[] NOT NULL DEFAULT '{}',
    -- An `api` user may change data only when granted.
    can_write       boolean NOT NULL DEFAULT false,
    active          boolean NOT NULL DEFAULT true,
    totp_secret     text,
    -- Bumped by a password change, a disable or a role/scope change: every
    -- session made before carries the old value and ends.
    session_epoch   integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz,
    CHECK (role = 'admin' OR cardinality(accounts) + cardinality(fleets) > 0),
    CHECK (login = lower(login))
);
CREATE UNIQUE INDEX users_login_key ON users (login);

CREATE TABLE api_tokens (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- sha256 of the token: a token is random (256 bits), a slow hash adds nothing.
    token_hash      bytea NOT NULL UNIQUE,
    -- The first characters, to tell tokens apart in a list.
    prefix          text NOT NULL,
    label           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    revoked_at      timestamptz,
    last_used_at    timestamptz,
    last_used_from  text
);

-- A read-only link to one vehicle-day, signed by its random token.
CREATE TABLE share_links (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash      bytea NOT NULL UNIQUE,
    placa           text NOT NULL,
    rota_date       date NOT NULL,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    last_used_at    timestamptz,
    uses            integer NOT NULL DEFAULT 0
);
CREATE INDEX share_links_day_idx ON share_links (placa, rota_date);

-- Who did what, when, from where (LGPD: access to personal data is recorded).
CREATE TABLE audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    -- The login, 'cli:<os user>', 'worker', 'share:<id>' or 'anonymous'.
    actor           text NOT NULL,
    address         text,
    action          text NOT NULL,
    target          text,
    ok              boolean NOT NULL DEFAULT true,
    detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_at_idx ON audit (at);
CREATE INDEX audit_actor_idx ON audit (actor, at);
