//! Reads `policies/` and checks it, collecting every problem with its file, line and field.
//! One module per file kind holds that file as written and its checks.

mod categories;
mod channels;
mod identifiers;
mod journeys;
mod jurisdictions;
mod notices;
mod purposes;
mod recipients;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use self::categories::{CategoriesFile, CATEGORIES_FILE};
use self::channels::{ChannelsFile, CHANNELS_FILE};
use self::identifiers::{IdentifiersFile, IDENTIFIERS_FILE};
use self::journeys::{JourneysFile, JOURNEYS_FILE};
use self::jurisdictions::{JurisdictionsFile, JURISDICTIONS_FILE};
use self::notices::NOTICES_DIR;
use self::purposes::{PurposesFile, PURPOSES_FILE};
use self::recipients::{RecipientsFile, RECIPIENTS_FILE};
use super::diagnostics::{PolicyError, PolicyIssue, Report, Source};
use super::retention::{self, Retention, RetentionFile, RETENTION_FILE};
use super::upstreams::{self, GateFile, GATE_FILE};
use super::Policies;
use crate::crypto::sha256_hex;

/// Loads and checks every policy file under `dir`. All problems are reported at once.
pub fn load(dir: &Path) -> Result<Policies, PolicyError> {
    let mut report = Report { issues: Vec::new() };
    let display = |file: &str| display_path(dir, file);

    let categories = read_toml::<CategoriesFile>(dir, CATEGORIES_FILE, &mut report)
        .map(|(source, file)| categories::check(&source, file, &mut report));
    let jurisdictions = read_toml::<JurisdictionsFile>(dir, JURISDICTIONS_FILE, &mut report)
        .and_then(|(source, file)| jurisdictions::check(&source, file, &mut report));
    let purposes = read_toml::<PurposesFile>(dir, PURPOSES_FILE, &mut report);
    let notices = notices::load(dir, &mut report);
    let retention = if dir.join(RETENTION_FILE).exists() {
        read_toml::<RetentionFile>(dir, RETENTION_FILE, &mut report)
            .map(|(source, file)| retention::check(&source, file, &mut report))
            .unwrap_or_default()
    } else {
        Retention::default()
    };

    let channels = match (&categories, &jurisdictions) {
        (Some(taxonomy), Some(jurisdictions)) => {
            read_toml::<ChannelsFile>(dir, CHANNELS_FILE, &mut report).map(|(source, file)| {
                channels::check(&source, file, taxonomy, jurisdictions, &mut report)
            })
        }
        _ => None,
    };

    let identifier_kinds = categories.as_ref().and_then(|taxonomy| {
        read_toml::<IdentifiersFile>(dir, IDENTIFIERS_FILE, &mut report)
            .map(|(source, file)| identifiers::check(&source, file, taxonomy, &mut report))
    });

    let upstreams = match (&categories, &purposes, &channels) {
        (Some(taxonomy), Some(_), Some(channels)) if dir.join(GATE_FILE).exists() => {
            read_toml::<GateFile>(dir, GATE_FILE, &mut report).map(|(source, file)| {
                upstreams::check(&source, file, taxonomy, channels, &mut report)
            })
        }
        _ => Some(Vec::new()),
    };

    let purposes = match (&categories, &jurisdictions, purposes) {
        (Some(taxonomy), Some(jurisdictions), Some((source, file))) => Some(purposes::check(
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
    let (
        Some(taxonomy),
        Some(jurisdictions),
        Some(purposes),
        Some(notices),
        Some(channels),
        Some(identifier_kinds),
    ) = (
        categories,
        jurisdictions,
        purposes,
        notices,
        channels,
        identifier_kinds,
    )
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
    let journeys = if dir.join(JOURNEYS_FILE).exists() {
        read_toml::<JourneysFile>(dir, JOURNEYS_FILE, &mut report)
            .map(|(source, file)| journeys::check(&source, file, &purposes, &mut report))
            .unwrap_or_default()
    } else {
        Default::default()
    };
    let recipients = if dir.join(RECIPIENTS_FILE).exists() {
        read_toml::<RecipientsFile>(dir, RECIPIENTS_FILE, &mut report)
            .map(|(source, file)| {
                recipients::check(&source, file, &purposes, &taxonomy, &mut report)
            })
            .unwrap_or_default()
    } else {
        Default::default()
    };
    let revision = revision_of(dir);
    let mut upstreams = upstreams.unwrap_or_default();
    // Purposes are checked here, once the purposes file is known to be sound.
    upstreams.retain(|u| {
        let known = purposes.iter().any(|p| p.key == u.purpose);
        if !known {
            report.issues.push(PolicyIssue {
                file: display(GATE_FILE),
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
    policies.channels = channels;
    policies.identifier_kinds = identifier_kinds;
    policies.journeys = journeys;
    policies.recipients = recipients;
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

/// A short digest of all policy files: the policy revision decisions are made under.
fn revision_of(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = [
        PURPOSES_FILE,
        JURISDICTIONS_FILE,
        CATEGORIES_FILE,
        CHANNELS_FILE,
        GATE_FILE,
        RETENTION_FILE,
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
