//! Requested changes to profile attributes, checked against the policies: the same rules
//! whether a service patches the profile or a rectification request asks for them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::attributes::AttributeChange;
use crate::policy::key::is_valid_key;
use crate::policy::Policies;
use crate::validation::FieldError;

const MAX_VALUE_BYTES: usize = 4096;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeInput {
    /// Any JSON value but null, at most 4 KiB.
    #[schema(value_type = Value)]
    pub value: Value,
    /// A data category from the policies' taxonomy.
    #[schema(example = "user.account", min_length = 1, max_length = 200)]
    pub category: String,
}

/// Checks requested attribute changes (keys, categories from the taxonomy, value sizes);
/// problems are named `{field}.{key}...`.
pub fn check_changes(
    policies: &Policies,
    field: &str,
    requested: BTreeMap<String, Option<AttributeInput>>,
) -> Result<BTreeMap<String, AttributeChange>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut changes = BTreeMap::new();
    for (key, input) in requested {
        let field = format!("{field}.{key}");
        if !is_valid_key(&key) || key.len() > 100 {
            errors.push(FieldError::new(
                &field,
                "invalid",
                "attribute keys are dotted lower-case words, e.g. `nps.score`",
            ));
            continue;
        }
        let Some(input) = input else {
            changes.insert(key, AttributeChange::Remove);
            continue;
        };
        if !policies.taxonomy.contains(&input.category) {
            errors.push(FieldError::new(
                format!("{field}.category"),
                "unknown_category",
                format!(
                    "`{}` is not a data category of the policies",
                    input.category
                ),
            ));
        }
        if input.value.is_null() {
            errors.push(FieldError::new(
                format!("{field}.value"),
                "required",
                "use `null` for the attribute itself to remove it",
            ));
        } else if input.value.to_string().len() > MAX_VALUE_BYTES {
            errors.push(FieldError::new(
                format!("{field}.value"),
                "too_large",
                format!("at most {MAX_VALUE_BYTES} bytes of JSON"),
            ));
        }
        changes.insert(
            key,
            AttributeChange::Set {
                value: input.value,
                category: input.category,
            },
        );
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
}
