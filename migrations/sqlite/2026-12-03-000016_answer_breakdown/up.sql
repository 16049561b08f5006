-- The value of the survey's breakdown attribute (its `breakdown`) when the answer was
-- given, as stored in profile_attributes.value: a report broken down by it groups the
-- answers themselves, with no join on the profile, and shows each answer under the
-- value it was given with.
ALTER TABLE survey_answers ADD COLUMN breakdown_value TEXT;
-- Covers the breakdown's grouped count, as survey_answers_report covers the others.
CREATE INDEX survey_answers_breakdown ON survey_answers
    (survey_id, question_id, answered_day, breakdown_value, number_value, text_value, version, answered_at);
