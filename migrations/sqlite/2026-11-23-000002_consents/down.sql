DROP TABLE profile_attributes;
DROP TABLE preferences;
DROP TABLE consent_states;
DROP TABLE consent_records;
