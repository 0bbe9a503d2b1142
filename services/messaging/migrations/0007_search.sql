-- Search (issue 18): each message's distinct words, cut and lower-cased by the service
-- (`src/search.rs`) so that both databases look up the same words. NULL: not indexed yet (a
-- message written before this migration; the service fills these in at start). The index
-- itself differs by database and is made at start (`src/store/search.rs`): a GIN index over
-- these words as a `tsvector` in PostgreSQL, an FTS5 table kept by triggers in SQLite.
ALTER TABLE messages ADD COLUMN search_words TEXT;
