-- Per-chat mute (issue 19): a member who muted a chat gets no push notifications for it.
-- 0 or 1 (an integer in both databases).
ALTER TABLE chat_members ADD COLUMN muted BIGINT NOT NULL DEFAULT 0;
