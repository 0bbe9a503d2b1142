-- Friend requests and friendships. Written in the SQL that PostgreSQL and SQLite share.

-- The users social has met, copied from the auth service (usernames never change).
CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    username TEXT NOT NULL
);

-- Pending requests only: accepting, declining or cancelling deletes the row.
-- (low_id, high_id) is the unordered pair: at most one pending request between two people,
-- whichever way it goes, enforced by the database.
CREATE TABLE friend_requests (
    id BIGINT PRIMARY KEY,
    from_id BIGINT NOT NULL REFERENCES users (id),
    to_id BIGINT NOT NULL REFERENCES users (id),
    low_id BIGINT NOT NULL,
    high_id BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    CHECK (low_id < high_id)
);

CREATE UNIQUE INDEX friend_requests_by_pair ON friend_requests (low_id, high_id);
CREATE INDEX friend_requests_by_recipient ON friend_requests (to_id);
CREATE INDEX friend_requests_by_sender ON friend_requests (from_id);

CREATE TABLE friendships (
    low_id BIGINT NOT NULL REFERENCES users (id),
    high_id BIGINT NOT NULL REFERENCES users (id),
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (low_id, high_id),
    CHECK (low_id < high_id)
);

CREATE INDEX friendships_by_high ON friendships (high_id);
