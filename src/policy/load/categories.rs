//! `data_categories.toml`: the taxonomy of data categories, dotted keys under declared parents.

use std::collections::HashSet;

use serde::Deserialize;
use toml::Spanned;

use crate::policy::diagnostics::{Report, Source};
use crate::policy::key::{is_valid_key, parent};
use crate::policy::taxonomy::{DataCategory, Taxonomy};

pub const CATEGORIES_FILE: &str = "data_categories.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CategoriesFile {
    #[serde(default)]
    category: Vec<RawCategory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    key: Spanned<String>,
    name: String,
    #[serde(default)]
    description: Option<String>,
}

pub(super) fn check(source: &Source, file: CategoriesFile, report: &mut Report) -> Taxonomy {
    let mut seen = HashSet::new();
    for (i, category) in file.category.iter().enumerate() {
        let key = category.key.get_ref();
        let field = format!("category[{i}].key");
        if !is_valid_key(key) {
            report.at(
                source,
                &category.key,
                field,
                format!("`{key}` is not a dotted lower-case key"),
            );
        } else if !seen.insert(key.clone()) {
            report.at(
                source,
                &category.key,
                field,
                format!("duplicate category `{key}`"),
            );
        }
    }
    for (i, category) in file.category.iter().enumerate() {
        if let Some(parent) = parent(category.key.get_ref()) {
            if !seen.contains(parent) {
                report.at(
                    source,
                    &category.key,
                    format!("category[{i}].key"),
                    format!("parent category `{parent}` is not declared"),
                );
            }
        }
    }
    Taxonomy::new(file.category.into_iter().map(|c| DataCategory {
        key: c.key.into_inner(),
        name: c.name,
        description: c.description,
    }))
}
