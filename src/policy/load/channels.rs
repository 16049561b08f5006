//! `channels.toml`: the channel catalogue and the default orders by region or jurisdiction.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use super::purposes::check_localized;
use crate::policy::channel::{is_channel_name, Channel, ChannelSpec, Channels};
use crate::policy::diagnostics::{Report, Source};
use crate::policy::{Jurisdictions, Region, Taxonomy};

pub const CHANNELS_FILE: &str = "channels.toml";

/// A list of channel names, each with its place in the file.
type RawOrder = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChannelsFile {
    #[serde(default)]
    channel: Vec<RawChannel>,
    /// By `default`, region code or jurisdiction key.
    order: Spanned<BTreeMap<Spanned<String>, RawOrder>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: Spanned<String>,
    category: Spanned<String>,
    names: Spanned<BTreeMap<String, String>>,
    #[serde(default)]
    opt_in_required: Vec<Spanned<String>>,
}

pub(super) fn check(
    source: &Source,
    file: ChannelsFile,
    taxonomy: &Taxonomy,
    jurisdictions: &Jurisdictions,
    report: &mut Report,
) -> Channels {
    let mut specs = Vec::new();
    let mut known = HashSet::new();
    for (i, raw) in file.channel.into_iter().enumerate() {
        let name = raw.name.get_ref().clone();
        let at = |field: &str| format!("channel[{i}] ({name}).{field}");
        check_name(source, &raw.name, at("name"), "channel", &mut known, report);
        check_category(source, &raw.category, at("category"), taxonomy, report);
        let names = check_localized(source, &raw.names, &at("names"), report);
        let mut opt_in_required = Vec::new();
        for key in &raw.opt_in_required {
            if jurisdictions.get(key.get_ref()).is_none() {
                report.at(
                    source,
                    key,
                    at("opt_in_required"),
                    format!("`{}` is not a jurisdiction", key.get_ref()),
                );
            } else {
                opt_in_required.push(key.get_ref().clone());
            }
        }
        specs.push(ChannelSpec {
            channel: Channels::declare(&name),
            category: raw.category.into_inner(),
            names,
            opt_in_required,
        });
    }
    if specs.is_empty() {
        report.at(
            source,
            &file.order,
            "channel",
            "declare at least one channel",
        );
    }

    let mut orders = HashMap::new();
    for (key, list) in file.order.get_ref() {
        let field = format!("order.{}", key.get_ref());
        if !is_order_key(key.get_ref(), jurisdictions) {
            report.at(
                source,
                key,
                &field,
                "`default`, a region code (`BR`, `US-CA`) or a jurisdiction key",
            );
        }
        let channels = check_order(source, list, &known, &field, report);
        orders.insert(key.get_ref().clone(), channels);
    }
    if !orders.contains_key("default") {
        report.at(
            source,
            &file.order,
            "order.default",
            "needs a `default` order, for regions with none of their own",
        );
    }
    Channels::new(specs, orders)
}

/// A name that is a key in requests (a channel, an identifier kind): lower-case, unique.
pub(super) fn check_name(
    source: &Source,
    name: &Spanned<String>,
    field: String,
    what: &str,
    known: &mut HashSet<String>,
    report: &mut Report,
) {
    if !is_channel_name(name.get_ref()) {
        report.at(
            source,
            name,
            field,
            "lower-case letters, digits and `_`, starting with a letter, at most 32",
        );
    } else if !known.insert(name.get_ref().clone()) {
        report.at(
            source,
            name,
            field,
            format!("duplicate {what} `{}`", name.get_ref()),
        );
    }
}

/// A data category of the taxonomy.
pub(super) fn check_category(
    source: &Source,
    category: &Spanned<String>,
    field: String,
    taxonomy: &Taxonomy,
    report: &mut Report,
) {
    if taxonomy.get(category.get_ref()).is_none() {
        report.at(
            source,
            category,
            field,
            format!(
                "`{}` is not a data category of data_categories.toml",
                category.get_ref()
            ),
        );
    }
}

/// `default`, a jurisdiction key, or a region code as `Region` writes it (upper case).
fn is_order_key(key: &str, jurisdictions: &Jurisdictions) -> bool {
    key == "default"
        || jurisdictions.get(key).is_some()
        || Region::parse(key).is_ok_and(|region| region.as_str() == key)
}

fn check_order(
    source: &Source,
    list: &RawOrder,
    known: &HashSet<String>,
    field: &str,
    report: &mut Report,
) -> Vec<Channel> {
    let mut seen = HashSet::new();
    let mut channels = Vec::new();
    for name in list.get_ref() {
        if !known.contains(name.get_ref()) {
            report.at(
                source,
                name,
                field,
                format!("`{}` is not a channel of this file", name.get_ref()),
            );
        } else if !seen.insert(name.get_ref().clone()) {
            report.at(
                source,
                name,
                field,
                format!("`{}` is listed twice", name.get_ref()),
            );
        } else {
            channels.push(Channels::declare(name.get_ref()));
        }
    }
    if list.get_ref().is_empty() {
        report.at(source, list, field, "name at least one channel");
    }
    channels
}
