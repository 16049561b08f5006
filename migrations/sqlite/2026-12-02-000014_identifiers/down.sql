DROP TABLE subject_merges;
DROP TABLE subject_identifiers;
