ALTER TABLE consent_records DROP COLUMN ip_source;
