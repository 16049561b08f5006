-- Links into the portal. A customer or console link is used once; a survey link may be
-- opened until it expires. Only a hash of the token is kept, so a stolen table opens
-- nothing.
CREATE TABLE portal_links (
    token_hash    TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    subject_id    TEXT,
    survey_id     TEXT,
    console_sub   TEXT,
    console_role  TEXT,
    locale        TEXT,
    return_url    TEXT,
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    used_at       TIMESTAMP
);
CREATE INDEX portal_links_subject ON portal_links (subject_id);

-- Sessions a link was exchanged for; the cookie holds the id, the table its hash.
CREATE TABLE portal_sessions (
    id_hash       TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    subject_id    TEXT,
    survey_id     TEXT,
    console_sub   TEXT,
    console_role  TEXT,
    locale        TEXT,
    return_url    TEXT,
    -- A survey session's display, so that reopening the link resumes it.
    display_id    TEXT,
    created_at    TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    ended_at      TIMESTAMP
);
CREATE INDEX portal_sessions_subject ON portal_sessions (subject_id);
