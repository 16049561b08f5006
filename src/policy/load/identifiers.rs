//! `identifiers.toml`: the kinds of identifier a customer may be known by.

use std::collections::HashSet;

use serde::Deserialize;
use toml::Spanned;

use super::channels::{check_category, check_name};
use crate::policy::diagnostics::{Report, Source};
use crate::policy::identifier_kind::{IdentifierFormat, IdentifierKind, IdentifierKinds};
use crate::policy::Taxonomy;

pub const IDENTIFIERS_FILE: &str = "identifiers.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentifiersFile {
    #[serde(default)]
    kind: Vec<RawKind>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    name: Spanned<String>,
    format: Spanned<String>,
    category: Spanned<String>,
}

pub(super) fn check(
    source: &Source,
    file: IdentifiersFile,
    taxonomy: &Taxonomy,
    report: &mut Report,
) -> IdentifierKinds {
    let mut kinds = Vec::new();
    let mut known = HashSet::new();
    for (i, raw) in file.kind.into_iter().enumerate() {
        let name = raw.name.get_ref().clone();
        let at = |field: &str| format!("kind[{i}] ({name}).{field}");
        // Kind names follow the channel names' rule: they are keys in requests.
        check_name(source, &raw.name, at("name"), "kind", &mut known, report);
        let format = IdentifierFormat::parse(raw.format.get_ref());
        if format.is_none() {
            report.at(
                source,
                &raw.format,
                at("format"),
                "one of `sha256`, `uuid`, `opaque`",
            );
        }
        check_category(source, &raw.category, at("category"), taxonomy, report);
        if let Some(format) = format {
            kinds.push(IdentifierKind {
                name,
                format,
                category: raw.category.into_inner(),
            });
        }
    }
    IdentifierKinds::new(kinds)
}
