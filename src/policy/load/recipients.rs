//! `recipients.toml`: the processors told of changes.

use std::collections::HashSet;

use serde::Deserialize;
use toml::Spanned;

use super::channels::{check_category, check_name};
use crate::policy::diagnostics::{Report, Source};
use crate::policy::recipient::{Acknowledgement, Recipient, Recipients};
use crate::policy::{Purpose, Taxonomy};

pub const RECIPIENTS_FILE: &str = "recipients.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecipientsFile {
    #[serde(default)]
    recipient: Vec<RawRecipient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    purposes: Vec<Spanned<String>>,
    #[serde(default)]
    data_categories: Vec<Spanned<String>>,
    webhook: Option<Spanned<String>>,
    acknowledge: Option<Spanned<String>>,
}

pub(super) fn check(
    source: &Source,
    file: RecipientsFile,
    purposes: &[Purpose],
    taxonomy: &Taxonomy,
    report: &mut Report,
) -> Recipients {
    let mut all = Vec::new();
    let mut known = HashSet::new();
    for (i, raw) in file.recipient.into_iter().enumerate() {
        let name = raw.name.get_ref().clone();
        let at = |field: &str| format!("recipient[{i}] ({name}).{field}");
        check_name(
            source,
            &raw.name,
            at("name"),
            "recipient",
            &mut known,
            report,
        );
        for purpose in &raw.purposes {
            if !purposes.iter().any(|p| &p.key == purpose.get_ref()) {
                report.at(
                    source,
                    purpose,
                    at("purposes"),
                    format!("`{}` is not a purpose", purpose.get_ref()),
                );
            }
        }
        for category in &raw.data_categories {
            check_category(source, category, at("data_categories"), taxonomy, report);
        }
        if let Some(url) = &raw.webhook {
            let text = url.get_ref();
            if !(text.starts_with("https://") || text.starts_with("http://")) {
                report.at(source, url, at("webhook"), "an http(s) URL");
            }
        }
        let acknowledge = match &raw.acknowledge {
            None => Acknowledgement::Delivery,
            Some(text) => match Acknowledgement::parse(text.get_ref()) {
                Some(a) => a,
                None => {
                    report.at(source, text, at("acknowledge"), "`delivery` or `token`");
                    continue;
                }
            },
        };
        if raw.webhook.is_none() && acknowledge == Acknowledgement::Delivery {
            report.at(
                source,
                &raw.name,
                at("acknowledge"),
                "a recipient without a webhook confirms with its token: `acknowledge = \"token\"`",
            );
        }
        all.push(Recipient {
            name,
            description: raw.description,
            purposes: raw.purposes.into_iter().map(Spanned::into_inner).collect(),
            data_categories: raw
                .data_categories
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
            webhook: raw.webhook.map(Spanned::into_inner),
            acknowledge,
        });
    }
    Recipients::new(all)
}
