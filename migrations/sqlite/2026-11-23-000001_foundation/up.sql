CREATE TABLE subjects (
    id          TEXT PRIMARY KEY,
    region      TEXT NOT NULL,
    locale      TEXT,
    birth_year  INTEGER,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

-- Every change is recorded here, in the same transaction as the change itself.
CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at  TIMESTAMP NOT NULL,
    actor_role   TEXT NOT NULL,
    actor_id     TEXT,
    action       TEXT NOT NULL,
    subject_id   TEXT,
    payload      TEXT NOT NULL
);
CREATE INDEX audit_events_subject ON audit_events (subject_id, seq);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at);
