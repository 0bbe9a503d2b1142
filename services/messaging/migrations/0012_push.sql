-- Web Push (issue 19). Written in the SQL PostgreSQL and SQLite share.

-- A browser's subscription with its push service: where to send (`endpoint`, one user's at
-- a time: a browser that signs in as another moves it), its keys (base64url), and the
-- session that made it (once that session ends, the browser gets nothing more).
CREATE TABLE push_subscriptions (
    endpoint TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    session_id BIGINT NOT NULL,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

-- A message to push to one subscription: written in the send's transaction, taken by a
-- sender (which leases it by moving `due_at_ms` on) and deleted once sent or given up.
CREATE TABLE push_queue (
    endpoint TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    due_at_ms BIGINT NOT NULL,
    PRIMARY KEY (endpoint, message_id)
);

CREATE INDEX push_queue_by_due ON push_queue (due_at_ms);
