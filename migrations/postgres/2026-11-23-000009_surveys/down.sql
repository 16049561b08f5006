DROP TABLE survey_followups;
DROP TABLE survey_answers;
DROP TABLE survey_responses;
DROP TABLE survey_displays;
DROP TABLE survey_versions;
DROP TABLE surveys;
DROP TABLE customer_events;
