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
