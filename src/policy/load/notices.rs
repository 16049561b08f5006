//! `notices/<locale>.md`: the privacy notice in each language, English required.

use std::path::{Path, PathBuf};

use super::display_path;
use crate::policy::diagnostics::Report;
use crate::policy::locale::{parse_locale, FALLBACK_LOCALE};
use crate::policy::notice::{Notice, Notices};

pub const NOTICES_DIR: &str = "notices";

pub(super) fn load(dir: &Path, report: &mut Report) -> Option<Notices> {
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
