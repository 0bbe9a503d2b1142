-- Blocks: one user refusing another's requests and messages.
CREATE TABLE blocks (
    blocker_id BIGINT NOT NULL REFERENCES users (id),
    blocked_id BIGINT NOT NULL REFERENCES users (id),
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);

CREATE INDEX blocks_by_blocked ON blocks (blocked_id);

-- One row per pair of users that ever interacted. Every change between two users (request,
-- accept, decline, cancel, unfriend, block, unblock) first updates the pair's row, which
-- holds the row lock until commit: changes to one pair happen one after the other, on any
-- number of replicas, and never interleave.
CREATE TABLE pair_locks (
    low_id BIGINT NOT NULL,
    high_id BIGINT NOT NULL,
    changes BIGINT NOT NULL,
    PRIMARY KEY (low_id, high_id)
);
