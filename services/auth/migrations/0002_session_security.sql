-- Refresh-token reuse detection and login throttling.

-- Refresh tokens already exchanged. Presenting one again means it was stolen (or copied):
-- the whole session it belongs to is revoked.
CREATE TABLE spent_refresh_tokens (
    hash TEXT PRIMARY KEY,
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    spent_at_ms BIGINT NOT NULL
);

-- Recent failed logins, keyed by `user:<name>` and `addr:<client address>`.
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);

CREATE INDEX login_failures_by_key ON login_failures (key, at_ms);
CREATE INDEX sessions_by_revocation ON sessions (revoked_at_ms);
