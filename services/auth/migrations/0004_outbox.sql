-- The transactional outbox (see astral_common::outbox): each event is written here in the
-- transaction of the change that caused it, published by a relay after the commit and then
-- deleted. Rows older than a few seconds were left behind (a process died, the bus was
-- down): a sweeper claims them for a while (`claimed_until_ms`) and publishes them.
CREATE TABLE outbox (
    id BIGINT PRIMARY KEY,
    subjects TEXT NOT NULL,
    payload BYTEA NOT NULL,
    created_at_ms BIGINT NOT NULL,
    claimed_until_ms BIGINT NOT NULL DEFAULT 0
);
