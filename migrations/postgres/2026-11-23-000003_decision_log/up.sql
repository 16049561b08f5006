-- A sample of the gate's decisions, for debugging and oversight; subjects appear only
-- as keyed pseudonyms. Rows older than the retention are deleted.
CREATE TABLE decision_log (
    id                 BIGSERIAL PRIMARY KEY,
    decided_at         TIMESTAMP NOT NULL,
    subject_pseudonym  TEXT NOT NULL,
    purpose            TEXT NOT NULL,
    channel            TEXT,
    decision           TEXT NOT NULL,
    reason             TEXT NOT NULL,
    basis              TEXT NOT NULL,
    jurisdiction       TEXT NOT NULL
);
CREATE INDEX decision_log_decided_at ON decision_log (decided_at);
