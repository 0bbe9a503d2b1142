-- Throttles that hold under concurrency and across replicas: an attempt is reserved before
-- the slow work it guards (a password check, a hash), in one transaction that first locks its
-- key's row, so parallel attempts are counted like sequential ones.

-- One row per throttled key (`login:<name>@<address>`, `login-address:<address>`,
-- `register:<address>`): taken first in every reservation, and the key's growing back-off.
CREATE TABLE throttle_keys (
    key TEXT PRIMARY KEY,
    lockouts BIGINT NOT NULL,
    blocked_until_ms BIGINT NOT NULL,
    touched_at_ms BIGINT NOT NULL
);

-- The attempts each key made in its window (a failed login stays; a successful one is
-- released).
CREATE TABLE throttle_attempts (
    id BIGINT PRIMARY KEY,
    key TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);

CREATE INDEX throttle_attempts_by_key ON throttle_attempts (key, at_ms);
CREATE INDEX throttle_attempts_by_time ON throttle_attempts (at_ms);

DROP TABLE login_failures;

-- Per-user rate limits of user calls (see astral_common::ratelimit), when the service may run
-- as several replicas: one row per user and method, its theoretical arrival time (GCRA) and
-- how many calls the last take leased to a replica.
CREATE TABLE rate_limits (
    user_id BIGINT NOT NULL,
    action TEXT NOT NULL,
    tat_ms BIGINT NOT NULL,
    leased BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, action)
);

CREATE INDEX rate_limits_by_time ON rate_limits (tat_ms);
CREATE INDEX sessions_by_last_use ON sessions (last_used_at_ms);
