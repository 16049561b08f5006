DROP INDEX audit_events_action;
DROP INDEX audit_events_pseudonym;
ALTER TABLE audit_events DROP COLUMN hash;
ALTER TABLE audit_events DROP COLUMN prev_hash;
ALTER TABLE audit_events DROP COLUMN payload_digest;
ALTER TABLE audit_events DROP COLUMN subject_pseudonym;
