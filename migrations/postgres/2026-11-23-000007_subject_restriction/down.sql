ALTER TABLE subjects DROP COLUMN restricted_at;
