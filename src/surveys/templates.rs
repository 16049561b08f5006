//! Survey definition files: the shipped templates (NPS with detractor and promoter
//! follow-ups; onboarding: role, goal, ease of setup) and `consentry surveys import`.

use std::path::Path;

use anyhow::Context;

use super::catalog::NewSurvey;

/// The templates under `templates/surveys/`, built into the binary.
pub const BUILT_IN: [(&str, &str); 2] = [
    ("nps.json", include_str!("../../templates/surveys/nps.json")),
    (
        "onboarding.json",
        include_str!("../../templates/surveys/onboarding.json"),
    ),
];

pub fn parse(name: &str, text: &str) -> anyhow::Result<NewSurvey> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| anyhow::anyhow!("{name}: {}: {}", e.path(), e.inner()))
}

pub fn read(path: &Path) -> anyhow::Result<NewSurvey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&path.display().to_string(), &text)
}

pub fn built_in() -> anyhow::Result<Vec<NewSurvey>> {
    BUILT_IN
        .iter()
        .map(|(name, text)| parse(name, text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surveys::definition::{check, Definition, DEFAULT_PURPOSE};

    #[test]
    fn the_shipped_templates_are_valid() {
        let policies =
            crate::policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
                .unwrap();
        for survey in built_in().unwrap() {
            let definition = Definition {
                questions: survey.questions.clone(),
                targeting: survey.targeting.clone(),
                throttling: survey.throttling.clone(),
                breakdown: survey.breakdown.clone(),
            };
            let purpose = survey.purpose.as_deref().unwrap_or(DEFAULT_PURPOSE);
            let problems = check(&policies, survey.kind, purpose, &definition);
            assert!(problems.is_empty(), "{}: {problems:?}", survey.key);
        }
    }
}
