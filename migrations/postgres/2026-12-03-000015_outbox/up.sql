-- Changes to tell downstream systems, written by `audit::record` in the transaction
-- that makes the change, so that a change commits with its message or not at all.
-- `payload` holds ids and the change, never attribute values.
CREATE TABLE outbox_messages (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    event_type       TEXT NOT NULL,
    -- Cleared once the subject is erased and every receiver has the message; the keyed
    -- pseudonym finds those messages.
    subject_id       TEXT,
    subject_pseudonym TEXT,
    purpose          TEXT,
    payload          TEXT NOT NULL,
    occurred_at      TIMESTAMP NOT NULL,
    -- Copied into one delivery per matching webhook endpoint.
    fanned_out       BOOLEAN NOT NULL DEFAULT FALSE,
    -- Acknowledged by JetStream (only when NATS is configured).
    published        BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX outbox_messages_unfanned ON outbox_messages (fanned_out, seq);
CREATE INDEX outbox_messages_unpublished ON outbox_messages (published, seq);
CREATE INDEX outbox_messages_occurred ON outbox_messages (occurred_at);
CREATE INDEX outbox_messages_pseudonym ON outbox_messages (subject_pseudonym);

-- Where changes are pushed. A recipient's endpoint (`policies/recipients.toml`) is
-- kept in step with the policy file at start.
CREATE TABLE webhook_endpoints (
    id                     TEXT PRIMARY KEY,
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL,
    -- JSON array of event types; empty for every type.
    event_types            TEXT NOT NULL,
    purpose                TEXT,
    data_category          TEXT,
    recipient              TEXT UNIQUE,
    secret                 TEXT NOT NULL,
    -- After a rotation the old secret signs too, until then.
    previous_secret        TEXT,
    previous_secret_until  TIMESTAMP,
    disabled_at            TIMESTAMP,
    disabled_reason        TEXT,
    consecutive_failures   INTEGER NOT NULL DEFAULT 0,
    created_at             TIMESTAMP NOT NULL,
    updated_at             TIMESTAMP NOT NULL
);

-- One message to one endpoint, retried until delivered or given up ("dead").
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    message_seq      BIGINT NOT NULL REFERENCES outbox_messages (seq),
    -- The subject, or '' for a change about no one: order is kept per subject.
    subject_key      TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMP NOT NULL,
    -- An instance that took the delivery holds it until then (several instances).
    lease_until      TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    delivered_at     TIMESTAMP,
    last_status      INTEGER,
    last_error       TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_chain ON webhook_deliveries (endpoint_id, subject_key, status, message_seq);
CREATE INDEX webhook_deliveries_message ON webhook_deliveries (message_seq);

-- Every try of a delivery, for the admins who ask why a receiver has not heard.
CREATE TABLE webhook_attempts (
    id            TEXT PRIMARY KEY,
    delivery_id   TEXT NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at  TIMESTAMP NOT NULL,
    status_code   INTEGER,
    error         TEXT,
    duration_ms   INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);

-- GDPR Art. 19: each recipient told of an erasure, rectification or restriction, and
-- whether it confirmed.
CREATE TABLE dsar_recipient_notices (
    request_id       TEXT NOT NULL REFERENCES dsar_requests (id),
    recipient        TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    told_at          TIMESTAMP,
    acknowledged_at  TIMESTAMP,
    -- `webhook` (a 2xx answer) or `token` (the acknowledgement endpoint).
    acknowledged_by  TEXT,
    PRIMARY KEY (request_id, recipient)
);

-- Grants whose expiry has been announced (a `consent.expired` event): a grant expires
-- silently in the gate, but downstream systems must hear of it.
CREATE TABLE consent_expiries (
    record_id     TEXT PRIMARY KEY,
    announced_at  TIMESTAMP NOT NULL
);
