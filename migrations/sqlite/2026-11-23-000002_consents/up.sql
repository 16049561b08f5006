-- The consent ledger: append-only, one row per consent given, refused or withdrawn.
CREATE TABLE consent_records (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    subject_id       TEXT NOT NULL REFERENCES subjects (id),
    purpose          TEXT NOT NULL,
    status           TEXT NOT NULL,
    source           TEXT NOT NULL,
    purpose_version  INTEGER NOT NULL,
    notice_digest    TEXT,
    actor_role       TEXT NOT NULL,
    actor_id         TEXT,
    ip_hash          TEXT,
    user_agent       TEXT,
    recorded_at      TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP
);
CREATE INDEX consent_records_subject ON consent_records (subject_id, seq);

-- The current state: the newest ledger row per subject and purpose.
CREATE TABLE consent_states (
    subject_id       TEXT NOT NULL REFERENCES subjects (id),
    purpose          TEXT NOT NULL,
    status           TEXT NOT NULL,
    source           TEXT NOT NULL,
    record_id        TEXT NOT NULL,
    record_seq       BIGINT NOT NULL,
    purpose_version  INTEGER NOT NULL,
    notice_digest    TEXT,
    updated_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP,
    PRIMARY KEY (subject_id, purpose)
);

CREATE TABLE preferences (
    subject_id  TEXT PRIMARY KEY REFERENCES subjects (id),
    document    TEXT NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE profile_attributes (
    subject_id  TEXT NOT NULL REFERENCES subjects (id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    category    TEXT NOT NULL,
    source      TEXT NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (subject_id, key)
);
