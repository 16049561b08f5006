//! `jurisdictions.toml`: the laws, the regions each covers, DSAR deadlines and minor ages.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use crate::policy::diagnostics::{Report, Source};
use crate::policy::jurisdiction::{Jurisdiction, Jurisdictions, Period};
use crate::policy::key::is_valid_key;
use crate::policy::purpose::DEFAULT_BASIS_KEY;
use crate::policy::region::Region;

pub const JURISDICTIONS_FILE: &str = "jurisdictions.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JurisdictionsFile {
    default: Option<Spanned<String>>,
    #[serde(default)]
    jurisdiction: Vec<RawJurisdiction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJurisdiction {
    key: Spanned<String>,
    name: String,
    #[serde(default)]
    law: Option<String>,
    #[serde(default)]
    regions: Vec<Spanned<String>>,
    dsar_response: Spanned<RawPeriod>,
    #[serde(default)]
    dsar_extension: Option<Spanned<RawPeriod>>,
    #[serde(default)]
    minor_age: Option<Spanned<i64>>,
    #[serde(default)]
    minor_age_by_region: BTreeMap<String, Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriod {
    days: Option<i64>,
    months: Option<i64>,
}

fn check_period(
    source: &Source,
    raw: &Spanned<RawPeriod>,
    field: &str,
    report: &mut Report,
) -> Option<Period> {
    // Bounded so that date arithmetic can never overflow.
    let within = |n: i64, max: u32| u32::try_from(n).ok().filter(|n| (1..=max).contains(n));
    match (raw.get_ref().days, raw.get_ref().months) {
        (Some(d), None) => within(d, 3_650).map(Period::Days),
        (None, Some(m)) => within(m, 120).map(Period::Months),
        _ => {
            report.at(source, raw, field, "give exactly one of `days` or `months`");
            return None;
        }
    }
    .or_else(|| {
        report.at(
            source,
            raw,
            field,
            "must be a whole number from 1 (at most 3650 days or 120 months)",
        );
        None
    })
}

pub(super) fn check(
    source: &Source,
    file: JurisdictionsFile,
    report: &mut Report,
) -> Option<Jurisdictions> {
    let issues_before = report.issues.len();
    let mut keys = HashSet::new();
    let mut region_owner: HashMap<String, String> = HashMap::new();
    let mut list = Vec::new();
    for (i, raw) in file.jurisdiction.iter().enumerate() {
        let key = raw.key.get_ref();
        if !is_valid_key(key) || key.contains('.') {
            report.at(
                source,
                &raw.key,
                format!("jurisdiction[{i}].key"),
                format!("`{key}` must be lower-case letters, digits and `_`"),
            );
        } else if key == DEFAULT_BASIS_KEY
            && file.default.as_ref().is_some_and(|d| d.get_ref() != key)
        {
            report.at(
                source,
                &raw.key,
                format!("jurisdiction[{i}].key"),
                "`default` is reserved for the default jurisdiction",
            );
        } else if !keys.insert(key.clone()) {
            report.at(
                source,
                &raw.key,
                format!("jurisdiction[{i}].key"),
                format!("duplicate jurisdiction `{key}`"),
            );
        }
        let mut regions = Vec::new();
        for (r, region) in raw.regions.iter().enumerate() {
            let field = format!("jurisdiction[{i}].regions[{r}]");
            match Region::parse(region.get_ref()) {
                Err(e) => report.at(source, region, field, e),
                Ok(parsed) => {
                    if let Some(owner) =
                        region_owner.insert(parsed.as_str().to_owned(), key.clone())
                    {
                        report.at(
                            source,
                            region,
                            field,
                            format!("region `{parsed}` is already in jurisdiction `{owner}`"),
                        );
                    }
                    regions.push(parsed);
                }
            }
        }
        let age = |value: &Spanned<i64>, field: String, report: &mut Report| {
            let age = u8::try_from(*value.get_ref())
                .ok()
                .filter(|a| (1..=21).contains(a));
            if age.is_none() {
                report.at(source, value, field, "an age between 1 and 21");
            }
            age
        };
        let minor_age = raw
            .minor_age
            .as_ref()
            .and_then(|a| age(a, format!("jurisdiction[{i}].minor_age"), report));
        let mut minor_age_by_region = BTreeMap::new();
        for (region, value) in &raw.minor_age_by_region {
            let field = format!("jurisdiction[{i}].minor_age_by_region.{region}");
            match Region::parse(region) {
                Err(e) => report.at(source, value, field, e),
                Ok(parsed) if !regions.contains(&parsed) => report.at(
                    source,
                    value,
                    field,
                    format!("`{parsed}` is not one of this jurisdiction's regions"),
                ),
                Ok(parsed) => {
                    if let Some(a) = age(value, field, report) {
                        minor_age_by_region.insert(parsed, a);
                    }
                }
            }
        }
        let dsar_response = check_period(
            source,
            &raw.dsar_response,
            &format!("jurisdiction[{i}].dsar_response"),
            report,
        );
        let dsar_extension = raw.dsar_extension.as_ref().and_then(|p| {
            check_period(
                source,
                p,
                &format!("jurisdiction[{i}].dsar_extension"),
                report,
            )
        });
        if let Some(dsar_response) = dsar_response {
            list.push(Jurisdiction {
                key: key.clone(),
                name: raw.name.clone(),
                law: raw.law.clone(),
                regions,
                dsar_response,
                dsar_extension,
                minor_age,
                minor_age_by_region,
            });
        }
    }
    let default_key = match &file.default {
        None => {
            report.file(
                source.name.clone(),
                "default",
                "missing: name the jurisdiction for regions not listed (`default = \"...\"`)",
            );
            return None;
        }
        Some(d) if !keys.contains(d.get_ref()) => {
            report.at(
                source,
                d,
                "default",
                format!("`{}` is not a declared jurisdiction", d.get_ref()),
            );
            return None;
        }
        Some(d) => d.get_ref().clone(),
    };
    if report.issues.len() > issues_before {
        return None;
    }
    Jurisdictions::new(list, &default_key)
}
