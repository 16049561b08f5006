//! Jurisdictions: which law applies to a region, and its deadlines.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Months, TimeDelta, Utc};

use super::region::Region;

/// A deadline in calendar months (GDPR: "one month") or days (CCPA: 45 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Days(u32),
    Months(u32),
}

impl Period {
    pub fn after(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Period::Days(days) => start + TimeDelta::days(i64::from(days)),
            // Past the end of a shorter month, chrono clamps to its last day.
            Period::Months(months) => start
                .checked_add_months(Months::new(months))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Jurisdiction {
    pub key: String,
    pub name: String,
    pub law: Option<String>,
    pub regions: Vec<Region>,
    /// Time to answer a data subject request, and how much it may be extended.
    pub dsar_response: Period,
    pub dsar_extension: Option<Period>,
    /// Below this age a known minor must opt in to sale and sharing.
    pub minor_age: Option<u8>,
    /// Per-region exceptions to `minor_age` (US states differ).
    pub minor_age_by_region: BTreeMap<Region, u8>,
}

impl Jurisdiction {
    pub fn minor_age_in(&self, region: &Region) -> Option<u8> {
        self.minor_age_by_region
            .get(region)
            .copied()
            .or(self.minor_age)
    }
}

/// All jurisdictions, with the region index and the default for unlisted regions.
#[derive(Debug, Clone)]
pub struct Jurisdictions {
    list: Vec<Jurisdiction>,
    by_region: HashMap<String, usize>,
    default: usize,
}

impl Jurisdictions {
    /// Builds the index; the caller has checked that regions are unique and the
    /// default exists.
    pub(super) fn new(list: Vec<Jurisdiction>, default_key: &str) -> Option<Self> {
        let default = list.iter().position(|j| j.key == default_key)?;
        let by_region = list
            .iter()
            .enumerate()
            .flat_map(|(i, j)| j.regions.iter().map(move |r| (r.as_str().to_owned(), i)))
            .collect();
        Some(Self {
            list,
            by_region,
            default,
        })
    }

    /// The subdivision's own entry, else its country's, else the default.
    pub fn for_region(&self, region: &Region) -> &Jurisdiction {
        let index = self
            .by_region
            .get(region.as_str())
            .or_else(|| self.by_region.get(region.country()))
            .copied()
            .unwrap_or(self.default);
        &self.list[index]
    }

    pub fn get(&self, key: &str) -> Option<&Jurisdiction> {
        self.list.iter().find(|j| j.key == key)
    }

    pub fn default_jurisdiction(&self) -> &Jurisdiction {
        &self.list[self.default]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Jurisdiction> {
        self.list.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn months_clamp_to_the_end_of_a_short_month() {
        let jan31 = Utc.with_ymd_and_hms(2026, 1, 31, 12, 0, 0).unwrap();
        assert_eq!(
            Period::Months(1).after(jan31),
            Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap()
        );
        assert_eq!(
            Period::Days(45).after(jan31),
            Utc.with_ymd_and_hms(2026, 3, 17, 12, 0, 0).unwrap()
        );
    }
}
