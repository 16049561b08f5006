DROP INDEX survey_answers_breakdown;
ALTER TABLE survey_answers DROP COLUMN breakdown_value;
