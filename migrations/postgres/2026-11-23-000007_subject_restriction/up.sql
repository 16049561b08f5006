-- Processing restricted (GDPR Art. 18) since this time; the gate then denies all but
-- strictly necessary purposes.
ALTER TABLE subjects ADD COLUMN restricted_at TIMESTAMP;
