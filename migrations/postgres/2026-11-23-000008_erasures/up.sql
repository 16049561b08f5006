-- Tombstones of erased subjects, by keyed pseudonym only: the gate denies them all but
-- strictly necessary processing, without keeping who they were.
CREATE TABLE erasures (
    pseudonym  TEXT PRIMARY KEY,
    erased_at  TIMESTAMP NOT NULL
);
