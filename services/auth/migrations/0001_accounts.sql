-- Accounts, sessions and token-signing keys. Written in the SQL that PostgreSQL and SQLite share.
CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE sessions (
    id BIGINT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    refresh_hash TEXT NOT NULL UNIQUE,
    user_agent TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    last_used_at_ms BIGINT NOT NULL,
    revoked_at_ms BIGINT
);

CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    seed TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
