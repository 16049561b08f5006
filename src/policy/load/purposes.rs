//! `purposes.toml`: each purpose with its texts, data categories, opt-out signals and
//! legal basis by jurisdiction.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use super::categories::CATEGORIES_FILE;
use super::jurisdictions::JURISDICTIONS_FILE;
use crate::policy::diagnostics::{Report, Source};
use crate::policy::jurisdiction::Jurisdictions;
use crate::policy::key::{is_valid_key, parent};
use crate::policy::locale::{parse_locale, LocalizedText, FALLBACK_LOCALE};
use crate::policy::purpose::{Basis, OptOutSignal, Purpose, DEFAULT_BASIS_KEY};
use crate::policy::taxonomy::Taxonomy;

pub const PURPOSES_FILE: &str = "purposes.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PurposesFile {
    #[serde(default)]
    purpose: Vec<RawPurpose>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPurpose {
    key: Spanned<String>,
    version: Spanned<i64>,
    name: Spanned<BTreeMap<String, String>>,
    #[serde(default)]
    description: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    data_categories: Vec<Spanned<String>>,
    #[serde(default)]
    gpc: bool,
    #[serde(default)]
    sale_or_share: bool,
    #[serde(default)]
    opt_out_signals: Vec<Spanned<String>>,
    #[serde(default)]
    consent_ttl_days: Option<Spanned<i64>>,
    basis: Spanned<BTreeMap<String, Spanned<String>>>,
}

pub(super) fn check_localized(
    source: &Source,
    text: &Spanned<BTreeMap<String, String>>,
    field: &str,
    report: &mut Report,
) -> LocalizedText {
    let mut out = BTreeMap::new();
    for (locale, value) in text.get_ref() {
        match parse_locale(locale) {
            Err(e) => report.at(source, text, format!("{field}.{locale}"), e),
            Ok(tag) if value.trim().is_empty() => {
                report.at(source, text, format!("{field}.{tag}"), "must not be empty")
            }
            Ok(tag) => {
                out.insert(tag, value.clone());
            }
        }
    }
    if !out.contains_key(FALLBACK_LOCALE) {
        report.at(
            source,
            text,
            field,
            format!("needs an `{FALLBACK_LOCALE}` text, the fallback"),
        );
    }
    LocalizedText(out)
}

pub(super) fn check(
    source: &Source,
    file: PurposesFile,
    taxonomy: &Taxonomy,
    jurisdictions: &Jurisdictions,
    report: &mut Report,
) -> Vec<Purpose> {
    let mut seen = HashSet::new();
    let mut purposes = Vec::new();
    for (i, raw) in file.purpose.iter().enumerate() {
        let key = raw.key.get_ref().clone();
        let at = |field: &str| format!("purpose[{i}] ({key}).{field}");
        if !is_valid_key(&key) {
            report.at(
                source,
                &raw.key,
                at("key"),
                format!("`{key}` is not a dotted lower-case key"),
            );
        } else if !seen.insert(key.clone()) {
            report.at(
                source,
                &raw.key,
                at("key"),
                format!("duplicate purpose `{key}`"),
            );
        }
        let version = u32::try_from(*raw.version.get_ref())
            .ok()
            .filter(|v| *v >= 1);
        if version.is_none() {
            report.at(
                source,
                &raw.version,
                at("version"),
                "must be a whole number from 1",
            );
        }
        let name = check_localized(source, &raw.name, &at("name"), report);
        let description = raw
            .description
            .as_ref()
            .map(|d| check_localized(source, d, &at("description"), report))
            .unwrap_or_default();
        for (c, category) in raw.data_categories.iter().enumerate() {
            if !taxonomy.contains(category.get_ref()) {
                report.at(
                    source,
                    category,
                    at(&format!("data_categories[{c}]")),
                    format!(
                        "`{}` is not in the taxonomy ({CATEGORIES_FILE})",
                        category.get_ref()
                    ),
                );
            }
        }
        let consent_ttl_days = raw.consent_ttl_days.as_ref().and_then(|ttl| {
            let days = u32::try_from(*ttl.get_ref())
                .ok()
                .filter(|d| (1..=36_500).contains(d));
            if days.is_none() {
                report.at(
                    source,
                    ttl,
                    at("consent_ttl_days"),
                    "must be a whole number of days from 1 to 36500",
                );
            }
            days
        });
        let mut opt_out_signals = Vec::new();
        for (n, signal) in raw.opt_out_signals.iter().enumerate() {
            match OptOutSignal::parse(signal.get_ref()) {
                Some(s) => opt_out_signals.push(s),
                None => report.at(
                    source,
                    signal,
                    at(&format!("opt_out_signals[{n}]")),
                    format!(
                        "unknown signal `{}` (expected one of {})",
                        signal.get_ref(),
                        OptOutSignal::ALL.map(OptOutSignal::as_str).join(", ")
                    ),
                ),
            }
        }
        let mut basis = BTreeMap::new();
        for (jurisdiction, value) in raw.basis.get_ref() {
            let field = at(&format!("basis.{jurisdiction}"));
            if jurisdiction != DEFAULT_BASIS_KEY && jurisdictions.get(jurisdiction).is_none() {
                report.at(
                    source,
                    value,
                    field,
                    format!("unknown jurisdiction `{jurisdiction}` (see {JURISDICTIONS_FILE})"),
                );
                continue;
            }
            match Basis::parse(value.get_ref()) {
                Some(b) => {
                    basis.insert(jurisdiction.clone(), b);
                }
                None => report.at(
                    source,
                    value,
                    field,
                    format!(
                        "unknown basis `{}` (expected one of {})",
                        value.get_ref(),
                        Basis::ALL.map(Basis::as_str).join(", ")
                    ),
                ),
            }
        }
        if !raw.basis.get_ref().contains_key(DEFAULT_BASIS_KEY) {
            report.at(
                source,
                &raw.basis,
                at("basis"),
                "missing `default`: the basis for jurisdictions not listed",
            );
        }
        if raw.gpc && basis.values().all(|b| *b == Basis::NoticeOnly) {
            report.at(
                source,
                &raw.key,
                at("gpc"),
                "a notice_only purpose cannot be opted out by GPC",
            );
        }
        purposes.push(Purpose {
            key,
            version: version.unwrap_or(1),
            name,
            description,
            data_categories: raw
                .data_categories
                .iter()
                .map(|c| c.get_ref().clone())
                .collect(),
            gpc: raw.gpc,
            sale_or_share: raw.sale_or_share,
            opt_out_signals,
            consent_ttl_days,
            basis,
        });
    }
    for (i, raw) in file.purpose.iter().enumerate() {
        if let Some(parent) = parent(raw.key.get_ref()) {
            if !seen.contains(parent) {
                report.at(
                    source,
                    &raw.key,
                    format!("purpose[{i}] ({}).key", raw.key.get_ref()),
                    format!("parent purpose `{parent}` is not declared"),
                );
            }
        }
    }
    purposes
}
