-- Attachments (issue 18): files users upload, whose bytes live in object storage
-- (`src/storage.rs`: `files/<id>`, and `thumbnails/<id>` for an image's thumbnail).
-- A row is a file whose bytes are stored whole. It belongs to its uploader until attached to
-- one message (`message_id`, `chat_id`, its `position` there), once; one left unattached
-- for 24 hours is deleted, and so are a deleted message's.
CREATE TABLE attachments (
    id BIGINT PRIMARY KEY,
    uploader_id BIGINT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    width BIGINT,
    height BIGINT,
    created_at_ms BIGINT NOT NULL,
    message_id BIGINT,
    chat_id TEXT,
    position BIGINT,
    -- The thumbnail's type once it is made (images only); NULL until then.
    thumbnail_type TEXT
);

CREATE INDEX attachments_by_message ON attachments (message_id);
CREATE INDEX attachments_unattached ON attachments (created_at_ms) WHERE message_id IS NULL;

-- Objects to remove from storage, written in the transaction that stops them being needed
-- (a message deleted, an upload expired) and removed after it commits by a worker that
-- retries until storage says they are gone. An upload in progress is written here first,
-- due an hour later, and taken off when its row commits: bytes left by a crash mid-upload
-- are removed too.
CREATE TABLE storage_deletions (
    object TEXT PRIMARY KEY,
    due_ms BIGINT NOT NULL
);

CREATE INDEX storage_deletions_by_due ON storage_deletions (due_ms);
