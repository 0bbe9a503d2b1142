-- The node part of ids (astral_common::ids::NodeLease): each process sharing this database
-- leases one of the 1,024 nodes, so that no two of them make the same id.
CREATE TABLE id_nodes (
    node BIGINT PRIMARY KEY,
    holder BIGINT NOT NULL,
    until_ms BIGINT NOT NULL
);
