-- The keys other services know a subject by (kinds from `policies/identifiers.toml`);
-- one identifier names one subject.
CREATE TABLE subject_identifiers (
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    subject_id  TEXT NOT NULL REFERENCES subjects (id),
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX subject_identifiers_subject ON subject_identifiers (subject_id);

-- Subjects merged into another: a request naming the old id is answered for the
-- subject it became.
CREATE TABLE subject_merges (
    from_id    TEXT PRIMARY KEY,
    into_id    TEXT NOT NULL,
    merged_at  TIMESTAMP NOT NULL
);
CREATE INDEX subject_merges_into ON subject_merges (into_id);
