-- Signed checkpoints pin the chain's head every N events and at every export, so that a
-- chain rewritten from some point on (hashes recomputed) no longer matches them.
CREATE TABLE audit_checkpoints (
    seq         BIGINT PRIMARY KEY,
    hash        TEXT NOT NULL,
    kid         TEXT NOT NULL,
    signature   TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
