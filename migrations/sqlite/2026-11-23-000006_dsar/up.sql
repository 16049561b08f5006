-- Data subject requests and the history of their status.
CREATE TABLE dsar_requests (
    id                TEXT PRIMARY KEY,
    subject_id        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    status            TEXT NOT NULL,
    details           TEXT NOT NULL,
    jurisdiction      TEXT NOT NULL,
    received_at       TIMESTAMP NOT NULL,
    due_at            TIMESTAMP NOT NULL,
    extended          BOOLEAN NOT NULL,
    extension_reason  TEXT,
    updated_at        TIMESTAMP NOT NULL
);
CREATE INDEX dsar_requests_subject ON dsar_requests (subject_id);
CREATE INDEX dsar_requests_status ON dsar_requests (status, due_at);

CREATE TABLE dsar_steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  TEXT NOT NULL REFERENCES dsar_requests (id),
    status      TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    actor_id    TEXT,
    note        TEXT,
    at          TIMESTAMP NOT NULL
);
CREATE INDEX dsar_steps_request ON dsar_steps (request_id, id);
