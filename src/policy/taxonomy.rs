//! Data categories (fideslang-style keys such as `user.contact.email`).

use std::collections::BTreeMap;

use super::key;

#[derive(Debug, Clone)]
pub struct DataCategory {
    pub key: String,
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Taxonomy {
    categories: BTreeMap<String, DataCategory>,
}

impl Taxonomy {
    pub(super) fn new(categories: impl IntoIterator<Item = DataCategory>) -> Self {
        Self {
            categories: categories.into_iter().map(|c| (c.key.clone(), c)).collect(),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.categories.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&DataCategory> {
        self.categories.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &DataCategory> {
        self.categories.values()
    }
}

/// Whether declaring `declared` allows use of `requested`: a category covers its children.
pub fn category_covers(declared: &[String], requested: &str) -> bool {
    declared.iter().any(|d| key::covers(d, requested))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_covers_its_children_only() {
        let declared = vec![
            "user.contact".to_string(),
            "user.behavior.feedback".to_string(),
        ];
        assert!(category_covers(&declared, "user.contact.email"));
        assert!(category_covers(&declared, "user.behavior.feedback"));
        assert!(!category_covers(&declared, "user.behavior"));
        assert!(!category_covers(
            &declared,
            "user.behavior.purchase_history"
        ));
    }
}
