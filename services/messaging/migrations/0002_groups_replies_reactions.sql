-- Replies, mentions and reactions. (Group chats use the tables of 0001.)

-- The message this one answers (same chat), if any.
ALTER TABLE messages ADD COLUMN reply_to_id BIGINT;
-- Members named with `@username`, as comma-separated user ids.
ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '';

-- One row per user, message and emoji; toggling deletes it.
CREATE TABLE reactions (
    message_id BIGINT NOT NULL REFERENCES messages (id),
    user_id BIGINT NOT NULL,
    emoji TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);
