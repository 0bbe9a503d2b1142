-- Presence and social settings (issue 19). Written in the SQL PostgreSQL and SQLite share.

-- Each user's social settings; a user without a row has the defaults.
-- share_presence: 0 or 1.
CREATE TABLE user_settings (
    user_id BIGINT PRIMARY KEY,
    share_presence BIGINT NOT NULL DEFAULT 1
);

-- A user's identified connections on one gateway process, as that gateway reports them:
-- idle = 1 when all of them are idle. Held until `until_ms` unless the gateway renews it,
-- so a gateway that dies without a word loses its users within the lease.
CREATE TABLE presence_leases (
    user_id BIGINT NOT NULL,
    gateway_id TEXT NOT NULL,
    idle BIGINT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, gateway_id)
);

CREATE INDEX presence_leases_by_gateway ON presence_leases (gateway_id);
CREATE INDEX presence_leases_by_until ON presence_leases (until_ms);

-- What a user's friends were last told of them: a change of status is published only
-- when it differs. last_seen_at_ms: when they were last online, to the minute.
CREATE TABLE presence (
    user_id BIGINT PRIMARY KEY,
    status TEXT NOT NULL,
    last_seen_at_ms BIGINT
);
