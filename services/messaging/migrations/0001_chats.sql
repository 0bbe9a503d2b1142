-- Chats, members and messages. Written in the SQL that PostgreSQL and SQLite share.

-- The users messaging has met, copied from the auth service (usernames never change).
CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    username TEXT NOT NULL
);

-- `last_seq` counts the chat's changes (message created, edited, deleted): it is bumped in
-- the same transaction as the change, so numbers have no gaps and follow commit order.
CREATE TABLE chats (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    name TEXT NOT NULL,
    owner_id BIGINT,
    last_seq BIGINT NOT NULL,
    last_activity_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE chat_members (
    chat_id TEXT NOT NULL REFERENCES chats (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    joined_at_ms BIGINT NOT NULL,
    read_seq BIGINT NOT NULL,
    PRIMARY KEY (chat_id, user_id)
);

CREATE INDEX chat_members_by_user ON chat_members (user_id);

-- A deleted message keeps its row as a tombstone: empty content, `deleted_at_ms` set.
CREATE TABLE messages (
    id BIGINT PRIMARY KEY,
    chat_id TEXT NOT NULL REFERENCES chats (id),
    seq BIGINT NOT NULL,
    version BIGINT NOT NULL,
    author_id BIGINT NOT NULL,
    content TEXT NOT NULL,
    nonce TEXT,
    created_at_ms BIGINT NOT NULL,
    edited_at_ms BIGINT,
    deleted_at_ms BIGINT
);

CREATE UNIQUE INDEX messages_by_seq ON messages (chat_id, seq);
CREATE UNIQUE INDEX messages_by_version ON messages (chat_id, version);
-- A retried send (same nonce) finds the first one; NULL nonces never collide.
CREATE UNIQUE INDEX messages_by_nonce ON messages (chat_id, author_id, nonce);
