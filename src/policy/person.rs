//! What the law sees of a person: where they live and whether they may be a minor. The
//! basis a purpose has for them follows from it alone, so consent writes, requests and
//! the gate's rules all ask the same function.

use chrono::{DateTime, Datelike, Utc};

use super::{Basis, Jurisdiction, Policies, Purpose, Region};

#[derive(Debug, Clone, Copy)]
pub struct PersonFacts<'a> {
    pub jurisdiction: &'a Jurisdiction,
    pub region: Option<&'a Region>,
    pub birth_year: Option<i32>,
}

impl<'a> PersonFacts<'a> {
    /// Someone living in `region`, born in `birth_year` if known.
    pub fn new(policies: &'a Policies, region: &'a Region, birth_year: Option<i32>) -> Self {
        Self {
            jurisdiction: policies.jurisdictions.for_region(region),
            region: Some(region),
            birth_year,
        }
    }

    /// Someone the service knows nothing of: the default jurisdiction decides.
    pub fn unknown(policies: &'a Policies) -> Self {
        Self {
            jurisdiction: policies.jurisdictions.default_jurisdiction(),
            region: None,
            birth_year: None,
        }
    }

    /// Whether the person may be under the jurisdiction's (or their state's) minor age:
    /// by birth year alone, so the benefit of the doubt goes to the minor.
    pub fn may_be_minor(&self, now: DateTime<Utc>) -> bool {
        let Some(birth_year) = self.birth_year else {
            return false;
        };
        let minor_age = self
            .region
            .and_then(|r| self.jurisdiction.minor_age_in(r))
            .or(self.jurisdiction.minor_age);
        minor_age.is_some_and(|age| now.year() - birth_year <= i32::from(age))
    }
}

impl Purpose {
    /// The basis that applies to this person: the jurisdiction's, except that a possible
    /// minor must opt in to the sale or sharing of their data.
    pub fn effective_basis(&self, person: &PersonFacts<'_>, now: DateTime<Utc>) -> Basis {
        let basis = self.basis_for(&person.jurisdiction.key);
        if basis == Basis::OptOut && self.sale_or_share && person.may_be_minor(now) {
            Basis::OptIn
        } else {
            basis
        }
    }
}
