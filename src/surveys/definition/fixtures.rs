//! Shared by the tests of the definition: the policies, a good NPS definition, and the
//! field paths of check errors.

use std::path::Path;

use serde_json::json;

use super::Definition;
use crate::policy::Policies;
use crate::validation::FieldError;

pub fn policies() -> Policies {
    crate::policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap()
}

pub fn nps_definition() -> Definition {
    serde_json::from_value(json!({
        "questions": [
            {"id": "score", "type": "nps", "required": true,
             "prompt": {"en": "How likely?", "ar": "ما مدى احتمال"},
             "write_back": {"attribute": "nps.score", "category": "user.behavior.feedback"}},
            {"id": "why_low", "type": "text", "max_length": 2000, "prompt": {"en": "What went wrong?"},
             "show_if": {"question": "score", "op": "lte", "value": 6}},
            {"id": "role", "type": "single_choice", "prompt": {"en": "Role"},
             "options": [{"id": "admin", "label": {"en": "Admin"}}, {"id": "dev", "label": {"en": "Developer"}}]}
        ],
        "targeting": {"trigger_events": ["onboarding.completed"],
                      "attributes": [{"key": "plan", "op": "eq", "value": "pro"}]}
    }))
    .unwrap()
}

pub fn fields(errors: Vec<FieldError>) -> Vec<String> {
    errors.into_iter().map(|e| e.field).collect()
}
