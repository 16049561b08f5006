//! Consent rates: per purpose and jurisdiction, how many customers allowed it, refused
//! it, or never answered. Counted by SQL over the current state (`GROUP BY`, never by
//! loading rows); the jurisdictions and the shares come from a pure function.
//!
//! A rate reads the customer's own answer for that exact purpose: a current state of
//! `granted` is an allow, `denied` a refusal, and a customer without a state for the
//! purpose has not answered (what the gate then decides follows from the basis, which
//! the rate carries beside the counts).

use std::collections::BTreeMap;

use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::policy::{Basis, Policies, Region};
use crate::storage::schema::{consent_states, subjects};
use crate::storage::{DbConnection, StorageError};

// The rates group the current state by the customer's region.
diesel::allow_columns_to_appear_in_same_group_by_clause!(
    subjects::region,
    consent_states::purpose,
    consent_states::status,
);

/// Customers of one jurisdiction by their answer for one purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub allow: i64,
    pub deny: i64,
    pub no_answer: i64,
}

impl Counts {
    pub fn total(&self) -> i64 {
        self.allow + self.deny + self.no_answer
    }

    /// `part` as a percentage of the total, rounded to one decimal; `None` without
    /// customers (a share of nobody is not 0%).
    pub fn share(&self, part: i64) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| (1000.0 * part as f64 / total as f64).round() / 10.0)
    }
}

/// One purpose in one jurisdiction.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub purpose: String,
    pub jurisdiction: String,
    /// What applies without an answer.
    pub basis: Basis,
    pub counts: Counts,
}

/// Customers per stored region.
fn subjects_by_region(conn: &mut DbConnection) -> Result<Vec<(String, i64)>, StorageError> {
    Ok(subjects::table
        .group_by(subjects::region)
        .select((subjects::region, count_star()))
        .load(conn)?)
}

/// Current answers per (region, purpose, status).
fn answers_by_region(
    conn: &mut DbConnection,
) -> Result<Vec<(String, String, String, i64)>, StorageError> {
    Ok(consent_states::table
        .inner_join(subjects::table)
        .group_by((
            subjects::region,
            consent_states::purpose,
            consent_states::status,
        ))
        .select((
            subjects::region,
            consent_states::purpose,
            consent_states::status,
            count_star(),
        ))
        .load(conn)?)
}

/// The rates of every purpose that can be answered, in every jurisdiction that has
/// customers, ordered as the policy lists purposes and jurisdictions.
pub fn rates(conn: &mut DbConnection, policies: &Policies) -> Result<Vec<Rate>, StorageError> {
    let subjects = subjects_by_region(conn)?;
    let answers = answers_by_region(conn)?;
    let jurisdiction_of = |region: &str| -> String {
        match Region::parse(region) {
            Ok(region) => policies.jurisdictions.for_region(&region).key.clone(),
            Err(_) => policies.jurisdictions.default_jurisdiction().key.clone(),
        }
    };
    let order: Vec<String> = policies
        .jurisdictions
        .iter()
        .map(|j| j.key.clone())
        .collect();
    let purposes: Vec<(String, BTreeMap<String, Basis>)> = policies
        .purposes()
        .iter()
        .map(|p| {
            let bases = order.iter().map(|j| (j.clone(), p.basis_for(j))).collect();
            (p.key.clone(), bases)
        })
        .collect();
    Ok(tabulate(
        &purposes,
        &order,
        jurisdiction_of,
        &subjects,
        &answers,
    ))
}

/// The arithmetic, without a database: regions fold into jurisdictions; whoever has no
/// state for a purpose has not answered. Purposes that cannot be answered where the
/// customer lives (necessary, or prohibited) are left out there.
pub fn tabulate(
    purposes: &[(String, BTreeMap<String, Basis>)],
    jurisdiction_order: &[String],
    jurisdiction_of: impl Fn(&str) -> String,
    subjects_by_region: &[(String, i64)],
    answers_by_region: &[(String, String, String, i64)],
) -> Vec<Rate> {
    let mut customers: BTreeMap<String, i64> = BTreeMap::new();
    for (region, n) in subjects_by_region {
        *customers.entry(jurisdiction_of(region)).or_default() += n;
    }
    let mut answered: BTreeMap<(String, String), Counts> = BTreeMap::new();
    for (region, purpose, status, n) in answers_by_region {
        let counts = answered
            .entry((purpose.clone(), jurisdiction_of(region)))
            .or_default();
        match status.as_str() {
            "granted" => counts.allow += n,
            "denied" => counts.deny += n,
            _ => {}
        }
    }
    let position = |j: &str| {
        jurisdiction_order
            .iter()
            .position(|o| o == j)
            .unwrap_or(usize::MAX)
    };
    let mut jurisdictions: Vec<&String> = customers.keys().collect();
    jurisdictions.sort_by_key(|j| (position(j), (*j).clone()));
    let mut rates = Vec::new();
    for (purpose, bases) in purposes {
        for jurisdiction in &jurisdictions {
            let basis = bases
                .get(jurisdiction.as_str())
                .copied()
                .unwrap_or(Basis::OptIn);
            if matches!(basis, Basis::NoticeOnly | Basis::Prohibited) {
                continue;
            }
            let mut counts = answered
                .get(&(purpose.clone(), (*jurisdiction).clone()))
                .copied()
                .unwrap_or_default();
            let people = customers.get(jurisdiction.as_str()).copied().unwrap_or(0);
            counts.no_answer = (people - counts.allow - counts.deny).max(0);
            rates.push(Rate {
                purpose: purpose.clone(),
                jurisdiction: (*jurisdiction).clone(),
                basis,
                counts,
            });
        }
    }
    rates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bases(pairs: &[(&str, Basis)]) -> BTreeMap<String, Basis> {
        pairs.iter().map(|(j, b)| ((*j).to_owned(), *b)).collect()
    }

    fn jurisdiction(region: &str) -> String {
        match region {
            "DE" | "FR" => "eea".into(),
            "US-CA" => "us_ca".into(),
            _ => "other".into(),
        }
    }

    #[test]
    fn regions_fold_into_jurisdictions_and_the_rest_have_not_answered() {
        let purposes = vec![
            (
                "analytics".to_owned(),
                bases(&[("eea", Basis::OptIn), ("us_ca", Basis::OptOut)]),
            ),
            (
                "essential".to_owned(),
                bases(&[("eea", Basis::NoticeOnly), ("us_ca", Basis::NoticeOnly)]),
            ),
        ];
        let order = vec!["eea".to_owned(), "us_ca".to_owned()];
        let subjects = vec![
            ("US-CA".to_owned(), 4),
            ("DE".to_owned(), 3),
            ("FR".to_owned(), 2),
        ];
        let answers = vec![
            ("DE".into(), "analytics".into(), "granted".into(), 2),
            ("FR".into(), "analytics".into(), "granted".into(), 1),
            ("FR".into(), "analytics".into(), "denied".into(), 1),
            ("US-CA".into(), "analytics".into(), "denied".into(), 1),
        ];
        let rates = tabulate(&purposes, &order, jurisdiction, &subjects, &answers);
        // Necessary purposes have nothing to answer; jurisdictions keep the policy's order.
        assert_eq!(rates.len(), 2);
        assert_eq!(rates[0].jurisdiction, "eea");
        assert_eq!(
            rates[0].counts,
            Counts {
                allow: 3,
                deny: 1,
                no_answer: 1
            }
        );
        assert_eq!(rates[1].basis, Basis::OptOut);
        assert_eq!(
            rates[1].counts,
            Counts {
                allow: 0,
                deny: 1,
                no_answer: 3
            }
        );
    }

    #[test]
    fn shares_are_of_the_whole_and_absent_without_customers() {
        let counts = Counts {
            allow: 1,
            deny: 1,
            no_answer: 1,
        };
        assert_eq!(counts.share(counts.allow), Some(33.3));
        assert_eq!(counts.share(2), Some(66.7));
        assert_eq!(Counts::default().share(0), None);
        // A state without a customer row (never expected) cannot make the rest negative.
        let rates = tabulate(
            &[("a".to_owned(), bases(&[("eea", Basis::OptIn)]))],
            &["eea".to_owned()],
            jurisdiction,
            &[("DE".to_owned(), 1)],
            &[("DE".into(), "a".into(), "granted".into(), 2)],
        );
        assert_eq!(rates[0].counts.no_answer, 0);
    }
}
