-- Group changes recorded in the history ("system" messages): what changed, who was
-- concerned, the name given. NULL `system_type` for a message a member wrote.
ALTER TABLE messages ADD COLUMN system_type TEXT;
ALTER TABLE messages ADD COLUMN system_user_id BIGINT;
ALTER TABLE messages ADD COLUMN system_name TEXT;
