-- Per-user rate limits of user calls (see astral_common::ratelimit), when the service may run
-- as several replicas: one row per user and method, its theoretical arrival time (GCRA).
CREATE TABLE rate_limits (
    user_id BIGINT NOT NULL,
    action TEXT NOT NULL,
    tat_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, action)
);

CREATE INDEX rate_limits_by_time ON rate_limits (tat_ms);
