//! Reads `policies/` and checks it, collecting every problem with its file, line and field.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::Spanned;

use super::jurisdiction::{Jurisdiction, Jurisdictions, Period};
use super::key::{is_valid_key, parent};
use super::locale::{parse_locale, LocalizedText, FALLBACK_LOCALE};
use super::notice::{Notice, Notices};
use super::purpose::{Basis, OptOutSignal, Purpose, DEFAULT_BASIS_KEY};
use super::region::Region;
use super::taxonomy::{DataCategory, Taxonomy};
use super::Policies;
use crate::crypto::sha256_hex;

pub const PURPOSES_FILE: &str = "purposes.toml";
pub const JURISDICTIONS_FILE: &str = "jurisdictions.toml";
pub const CATEGORIES_FILE: &str = "data_categories.toml";
pub const NOTICES_DIR: &str = "notices";

/// One thing wrong in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyIssue {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for PolicyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}:{}: {}: {}",
                self.file, line, self.field, self.message
            ),
            None => write!(f, "{}: {}: {}", self.file, self.field, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub struct PolicyError {
    pub issues: Vec<PolicyIssue>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the policies:", self.issues.len())?;
        for issue in &self.issues {
            writeln!(f, "  {issue}")?;
        }
        Ok(())
    }
}

/// A file's text and the name to report it under.
pub(super) struct Source {
    pub(super) name: String,
    pub(super) text: String,
}

impl Source {
    fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }
}

/// Collects issues as the checks run.
pub(super) struct Report {
    pub(super) issues: Vec<PolicyIssue>,
}

impl Report {
    pub(super) fn at<T>(
        &mut self,
        source: &Source,
        spanned: &Spanned<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.issues.push(PolicyIssue {
            file: source.name.clone(),
            line: Some(source.line_at(spanned.span().start)),
            field: field.into(),
            message: message.into(),
        });
    }

    fn file(
        &mut self,
        file: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.issues.push(PolicyIssue {
            file: file.into(),
            line: None,
            field: field.into(),
            message: message.into(),
        });
    }
}

// ---- the files as written -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposesFile {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JurisdictionsFile {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoriesFile {
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

// ---- loading ----------------------------------------------------------------------

/// Loads and checks every policy file under `dir`. All problems are reported at once.
pub fn load(dir: &Path) -> Result<Policies, PolicyError> {
    let mut report = Report { issues: Vec::new() };
    let display = |file: &str| display_path(dir, file);

    let categories = read_toml::<CategoriesFile>(dir, CATEGORIES_FILE, &mut report)
        .map(|(source, file)| check_categories(&source, file, &mut report));
    let jurisdictions = read_toml::<JurisdictionsFile>(dir, JURISDICTIONS_FILE, &mut report)
        .and_then(|(source, file)| check_jurisdictions(&source, file, &mut report));
    let purposes = read_toml::<PurposesFile>(dir, PURPOSES_FILE, &mut report);
    let notices = load_notices(dir, &mut report);
    let retention = if dir.join(super::retention::RETENTION_FILE).exists() {
        read_toml::<super::retention::RetentionFile>(
            dir,
            super::retention::RETENTION_FILE,
            &mut report,
        )
        .map(|(source, file)| super::retention::check(&source, file, &mut report))
        .unwrap_or_default()
    } else {
        super::retention::Retention::default()
    };
    let upstreams = match (&categories, &purposes) {
        (Some(taxonomy), Some(_)) if dir.join(super::upstreams::GATE_FILE).exists() => {
            read_toml::<super::upstreams::GateFile>(dir, super::upstreams::GATE_FILE, &mut report)
                .map(|(source, file)| super::upstreams::check(&source, file, taxonomy, &mut report))
        }
        _ => Some(Vec::new()),
    };

    let purposes = match (&categories, &jurisdictions, purposes) {
        (Some(taxonomy), Some(jurisdictions), Some((source, file))) => Some(check_purposes(
            &source,
            file,
            taxonomy,
            jurisdictions,
            &mut report,
        )),
        _ => None,
    };

    if !report.issues.is_empty() {
        return Err(PolicyError {
            issues: report.issues,
        });
    }
    let (Some(taxonomy), Some(jurisdictions), Some(purposes), Some(notices)) =
        (categories, jurisdictions, purposes, notices)
    else {
        // Every `None` above pushed an issue; this is only reached if one did not.
        return Err(PolicyError {
            issues: vec![PolicyIssue {
                file: display(""),
                line: None,
                field: "policies".into(),
                message: "could not be loaded".into(),
            }],
        });
    };
    let revision = revision_of(dir);
    let mut upstreams = upstreams.unwrap_or_default();
    // Purposes are checked here, once the purposes file is known to be sound.
    upstreams.retain(|u| {
        let known = purposes.iter().any(|p| p.key == u.purpose);
        if !known {
            report.issues.push(PolicyIssue {
                file: display(super::upstreams::GATE_FILE),
                line: None,
                field: format!("upstream ({}).purpose", u.name),
                message: format!("`{}` is not a purpose", u.purpose),
            });
        }
        known
    });
    if !report.issues.is_empty() {
        return Err(PolicyError {
            issues: report.issues,
        });
    }
    let mut policies = Policies::new(
        upstreams,
        purposes,
        jurisdictions,
        taxonomy,
        notices,
        revision,
    );
    policies.retention = retention;
    Ok(policies)
}

fn display_path(dir: &Path, file: &str) -> String {
    let path: PathBuf = if file.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(file)
    };
    path.display().to_string()
}

pub(super) fn read_toml<T: DeserializeOwned>(
    dir: &Path,
    file: &str,
    report: &mut Report,
) -> Option<(Source, T)> {
    let name = display_path(dir, file);
    let text = match std::fs::read_to_string(dir.join(file)) {
        Ok(text) => text,
        Err(e) => {
            report.file(name, file, format!("cannot read: {e}"));
            return None;
        }
    };
    let source = Source { name, text };
    match toml::from_str::<T>(&source.text) {
        Ok(parsed) => Some((source, parsed)),
        Err(e) => {
            let line = e.span().map(|s| source.line_at(s.start));
            report.issues.push(PolicyIssue {
                file: source.name.clone(),
                line,
                field: "toml".into(),
                message: e.message().trim().to_owned(),
            });
            None
        }
    }
}

fn check_categories(source: &Source, file: CategoriesFile, report: &mut Report) -> Taxonomy {
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

fn check_jurisdictions(
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

fn check_localized(
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

fn check_purposes(
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

fn load_notices(dir: &Path, report: &mut Report) -> Option<Notices> {
    let notices_dir = dir.join(NOTICES_DIR);
    let name = display_path(dir, NOTICES_DIR);
    let entries = match std::fs::read_dir(&notices_dir) {
        Ok(entries) => entries,
        Err(e) => {
            report.file(name, NOTICES_DIR, format!("cannot read: {e}"));
            return None;
        }
    };
    let mut notices = Vec::new();
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let shown = path.display().to_string();
        let Some(stem) = file_name.strip_suffix(".md") else {
            report.file(
                shown,
                "file name",
                "notices are `<locale>.md`, e.g. `en.md`",
            );
            continue;
        };
        let locale = match parse_locale(stem) {
            Ok(l) => l,
            Err(e) => {
                report.file(shown, "locale", e);
                continue;
            }
        };
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => report.file(shown, "text", "the notice is empty"),
            Ok(text) => notices.push(Notice::new(locale, text)),
            Err(e) => report.file(shown, "text", format!("cannot read as UTF-8: {e}")),
        }
    }
    if !notices.iter().any(|n| n.locale == FALLBACK_LOCALE) {
        report.file(
            name,
            "en.md",
            "an English notice is required (the fallback)",
        );
        return None;
    }
    Some(Notices::new(notices))
}

/// A short digest of all policy files: the policy revision decisions are made under.
fn revision_of(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = [
        PURPOSES_FILE,
        JURISDICTIONS_FILE,
        CATEGORIES_FILE,
        super::upstreams::GATE_FILE,
        super::retention::RETENTION_FILE,
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    if let Ok(entries) = std::fs::read_dir(dir.join(NOTICES_DIR)) {
        files.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
    }
    files.sort();
    let mut all = Vec::new();
    for file in files {
        all.extend_from_slice(
            file.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        all.push(0);
        all.extend(std::fs::read(&file).unwrap_or_default());
        all.push(0);
    }
    sha256_hex(&all)[..12].to_owned()
}
