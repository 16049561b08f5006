-- Customer events (survey triggers, and events downstream services read).
CREATE TABLE customer_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id   TEXT NOT NULL REFERENCES subjects (id),
    name         TEXT NOT NULL,
    properties   TEXT NOT NULL,
    occurred_at  TIMESTAMP NOT NULL,
    received_at  TIMESTAMP NOT NULL
);
CREATE INDEX customer_events_subject ON customer_events (subject_id, name, occurred_at);
CREATE INDEX customer_events_subject_order ON customer_events (subject_id, id);
CREATE INDEX customer_events_name ON customer_events (name, id);
CREATE INDEX customer_events_received ON customer_events (received_at);

-- Survey definitions: the current version inline, every version kept.
CREATE TABLE surveys (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    priority    INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
CREATE INDEX surveys_status ON surveys (status, priority);

CREATE TABLE survey_versions (
    survey_id   TEXT NOT NULL REFERENCES surveys (id),
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (survey_id, version)
);

CREATE TABLE survey_displays (
    id            TEXT PRIMARY KEY,
    survey_id     TEXT NOT NULL REFERENCES surveys (id),
    version       INTEGER NOT NULL,
    subject_id    TEXT NOT NULL REFERENCES subjects (id),
    event         TEXT,
    shown_at      TIMESTAMP NOT NULL,
    dismissed_at  TIMESTAMP
);
CREATE INDEX survey_displays_subject ON survey_displays (subject_id, shown_at);
CREATE INDEX survey_displays_survey ON survey_displays (survey_id, shown_at, version, dismissed_at);

-- One response per subject and survey: partial answers, then the final one, update it.
CREATE TABLE survey_responses (
    id           TEXT PRIMARY KEY,
    survey_id    TEXT NOT NULL REFERENCES surveys (id),
    version      INTEGER NOT NULL,
    subject_id   TEXT NOT NULL REFERENCES subjects (id),
    display_id   TEXT,
    answers      TEXT NOT NULL,
    finished     BOOLEAN NOT NULL,
    started_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP,
    UNIQUE (survey_id, subject_id)
);
CREATE INDEX survey_responses_survey ON survey_responses (survey_id, started_at, finished, version);
CREATE INDEX survey_responses_subject ON survey_responses (subject_id);
CREATE INDEX survey_responses_version ON survey_responses (survey_id, version);

-- One row per answered question (per chosen option for multiple choice), so that
-- reports aggregate in SQL.
CREATE TABLE survey_answers (
    response_id   TEXT NOT NULL REFERENCES survey_responses (id),
    question_id   TEXT NOT NULL,
    ordinal       INTEGER NOT NULL,
    survey_id     TEXT NOT NULL,
    version       INTEGER NOT NULL,
    subject_id    TEXT NOT NULL,
    number_value  INTEGER,
    -- A chosen option's id (short); free text goes in free_text, never in an index.
    text_value    TEXT,
    free_text     TEXT,
    answered_at   TIMESTAMP NOT NULL,
    -- `YYYY-MM-DD` (UTC) of answered_at: reports group by day in index order.
    answered_day  TEXT NOT NULL,
    PRIMARY KEY (response_id, question_id, ordinal)
);
-- Covers every report query, so counting a million answers never visits the table.
CREATE INDEX survey_answers_report ON survey_answers
    (survey_id, question_id, answered_day, number_value, text_value, version, answered_at, ordinal, subject_id);
CREATE INDEX survey_answers_subject ON survey_answers (subject_id);
-- The breakdown walks a question's answers in subject order, so its lookups of the
-- subjects' attribute values go through the other index in order too.
CREATE INDEX survey_answers_by_subject ON survey_answers
    (survey_id, question_id, subject_id, number_value, text_value, answered_day, answered_at, version);

-- Detractors to help: opened by a detractor answer, closed by support.
CREATE TABLE survey_followups (
    id           TEXT PRIMARY KEY,
    survey_id    TEXT NOT NULL REFERENCES surveys (id),
    response_id  TEXT NOT NULL UNIQUE REFERENCES survey_responses (id),
    subject_id   TEXT NOT NULL REFERENCES subjects (id),
    score        INTEGER NOT NULL,
    status       TEXT NOT NULL,
    opened_at    TIMESTAMP NOT NULL,
    closed_at    TIMESTAMP,
    closed_by    TEXT,
    resolution   TEXT
);
CREATE INDEX survey_followups_survey ON survey_followups (survey_id, status, opened_at);
CREATE INDEX survey_followups_subject ON survey_followups (subject_id);

-- Lets a report's breakdown read an attribute's value from the index alone.
CREATE INDEX profile_attributes_values ON profile_attributes (subject_id, key, value);
