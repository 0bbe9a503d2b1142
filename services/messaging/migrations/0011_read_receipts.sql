-- Each user's messaging settings (issue 19); a user without a row has the defaults.
-- share_read_receipts: 0 or 1 (an integer in both databases).
CREATE TABLE user_settings (
    user_id BIGINT PRIMARY KEY,
    share_read_receipts BIGINT NOT NULL DEFAULT 1
);
