//! Attribute storage and the purpose filter.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use crate::consent::SubjectId;
use crate::policy::taxonomy::category_covers;
use crate::policy::Purpose;
use crate::storage::schema::profile_attributes;
use crate::storage::{DbConnection, StorageError};

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub value: Value,
    pub category: String,
    pub source: String,
    pub updated_at: DateTime<Utc>,
}

pub type Attributes = BTreeMap<String, Attribute>;

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = profile_attributes)]
struct AttributeRow {
    subject_id: String,
    key: String,
    value: String,
    category: String,
    source: String,
    updated_at: NaiveDateTime,
}

/// One attribute's value as stored (JSON text), if the subject has it.
pub fn stored_value(
    conn: &mut DbConnection,
    subject: &SubjectId,
    key: &str,
) -> Result<Option<String>, StorageError> {
    Ok(profile_attributes::table
        .filter(profile_attributes::subject_id.eq(subject.as_str()))
        .filter(profile_attributes::key.eq(key))
        .select(profile_attributes::value)
        .first(conn)
        .optional()?)
}

pub fn load(conn: &mut DbConnection, subject: &SubjectId) -> Result<Attributes, StorageError> {
    profile_attributes::table
        .filter(profile_attributes::subject_id.eq(subject.as_str()))
        .select(AttributeRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| {
            let value = serde_json::from_str(&row.value).map_err(|e| {
                StorageError::Query(diesel::result::Error::DeserializationError(Box::new(e)))
            })?;
            Ok((
                row.key,
                Attribute {
                    value,
                    category: row.category,
                    source: row.source,
                    updated_at: row.updated_at.and_utc(),
                },
            ))
        })
        .collect()
}

/// A change to one attribute: a new value, or removal.
#[derive(Debug, Clone)]
pub enum AttributeChange {
    Set { value: Value, category: String },
    Remove,
}

/// Applies changes. Call inside a write transaction.
pub fn apply(
    conn: &mut DbConnection,
    subject: &SubjectId,
    changes: &BTreeMap<String, AttributeChange>,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    for (key, change) in changes {
        let target = profile_attributes::table.find((subject.as_str(), key.as_str()));
        match change {
            AttributeChange::Remove => {
                diesel::delete(target).execute(conn)?;
            }
            AttributeChange::Set { value, category } => {
                let row = AttributeRow {
                    subject_id: subject.as_str().to_owned(),
                    key: key.clone(),
                    value: value.to_string(),
                    category: category.clone(),
                    source: source.to_owned(),
                    updated_at: now.naive_utc(),
                };
                if diesel::update(target).set(&row).execute(conn)? == 0 {
                    diesel::insert_into(profile_attributes::table)
                        .values(&row)
                        .execute(conn)?;
                }
            }
        }
    }
    Ok(())
}

/// Purpose limitation at read time: only attributes whose category the purpose declares.
pub fn visible_to(attributes: Attributes, purpose: &Purpose) -> Attributes {
    attributes
        .into_iter()
        .filter(|(_, a)| category_covers(&purpose.data_categories, &a.category))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_purpose_sees_only_its_categories() {
        let policies =
            crate::policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap();
        let at = Utc::now();
        let attribute = |category: &str| Attribute {
            value: Value::from(1),
            category: category.into(),
            source: "api".into(),
            updated_at: at,
        };
        let all: Attributes = [
            ("email".to_string(), attribute("user.contact.email")),
            (
                "last_order".to_string(),
                attribute("user.behavior.purchase_history"),
            ),
            ("nps.score".to_string(), attribute("user.behavior.feedback")),
        ]
        .into();
        let recommendations = visible_to(
            all.clone(),
            policies
                .purpose("personalize.product_recommendations")
                .unwrap(),
        );
        assert_eq!(recommendations.keys().collect::<Vec<_>>(), ["last_order"]);
        let personalize = visible_to(all.clone(), policies.purpose("personalize").unwrap());
        assert_eq!(
            personalize.keys().collect::<Vec<_>>(),
            ["last_order", "nps.score"]
        );
        let email = visible_to(all, policies.purpose("marketing.email").unwrap());
        assert_eq!(email.keys().collect::<Vec<_>>(), ["email"]);
    }
}
