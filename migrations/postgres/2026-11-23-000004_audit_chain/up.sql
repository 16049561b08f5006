-- The audit log becomes a hash chain: each event carries a keyed pseudonym of its
-- subject, the SHA-256 of its payload, the previous event's hash and its own.
-- Events written before this migration are sealed into the chain at the next start.
ALTER TABLE audit_events ADD COLUMN subject_pseudonym TEXT;
ALTER TABLE audit_events ADD COLUMN payload_digest TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_pseudonym ON audit_events (subject_pseudonym, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
