-- Counts the changes to a chat's members (bumped, under the chat row's lock, in the same
-- transaction as each change). A sender that kept a chat's member list compares it with the
-- value its insert returns, and reloads the list when they differ.
ALTER TABLE chats ADD COLUMN members_version BIGINT NOT NULL DEFAULT 0;
