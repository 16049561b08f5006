-- Messages sent to a subject, recorded by the services that sent them, so that reach
-- can count weekly caps. Kept only as long as a cap can look back (see
-- `gate::contacts::RETENTION_DAYS`); erasure deletes them.
CREATE TABLE contacts (
    id               TEXT PRIMARY KEY,
    subject_id       TEXT NOT NULL REFERENCES subjects (id),
    channel          TEXT NOT NULL,
    purpose          TEXT NOT NULL,
    sent_at          TIMESTAMP NOT NULL,
    recorded_at      TIMESTAMP NOT NULL,
    -- The sender's key for a retried request: one contact per key and subject.
    idempotency_key  TEXT,
    UNIQUE (subject_id, idempotency_key)
);
CREATE INDEX contacts_subject_sent ON contacts (subject_id, sent_at);
