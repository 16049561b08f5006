//! `gate.toml`: the personalization services that the reverse-proxy gate forwards to,
//! each behind a purpose, and what to answer when the gate says no.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::diagnostics::{Report, Source};
use super::taxonomy::Taxonomy;
use super::{Channel, Channels};

pub const GATE_FILE: &str = "gate.toml";

/// What to answer in place of the upstream when the decision is a deny.
#[derive(Debug, Clone, PartialEq)]
pub enum Fallback {
    /// A 403 problem naming the reason.
    Problem,
    /// A fixed JSON answer (e.g. non-personalized defaults).
    Static { status: u16, body: Value },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub name: String,
    /// `http://host:port/base/path`, without a trailing slash.
    pub base_url: String,
    pub purpose: String,
    pub channel: Option<Channel>,
    pub data_categories: Vec<String>,
    pub timeout: Duration,
    pub fallback: Fallback,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GateFile {
    #[serde(default)]
    upstream: Vec<RawUpstream>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    name: Spanned<String>,
    base_url: Spanned<String>,
    purpose: Spanned<String>,
    #[serde(default)]
    channel: Option<Spanned<String>>,
    #[serde(default)]
    data_categories: Vec<Spanned<String>>,
    #[serde(default)]
    timeout_ms: Option<Spanned<i64>>,
    #[serde(default)]
    fallback: Option<Spanned<RawFallback>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFallback {
    status: i64,
    #[serde(default)]
    body: Option<toml::Value>,
}

const DEFAULT_TIMEOUT_MS: u64 = 5_000;

pub(super) fn check(
    source: &Source,
    file: GateFile,
    taxonomy: &Taxonomy,
    channels: &Channels,
    report: &mut Report,
) -> Vec<Upstream> {
    let mut names = HashSet::new();
    let mut upstreams = Vec::new();
    for (i, raw) in file.upstream.into_iter().enumerate() {
        let name = raw.name.get_ref().clone();
        let at = |field: &str| format!("upstream[{i}] ({name}).{field}");
        let before = report.issues.len();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            report.at(
                source,
                &raw.name,
                at("name"),
                "lower-case letters, digits, `-` and `_`",
            );
        } else if !names.insert(name.clone()) {
            report.at(
                source,
                &raw.name,
                at("name"),
                format!("duplicate upstream `{name}`"),
            );
        }
        let base_url = raw.base_url.get_ref().trim_end_matches('/').to_owned();
        match base_url.parse::<actix_web::http::Uri>() {
            Ok(uri) if uri.scheme_str() == Some("http") && uri.host().is_some() && uri.query().is_none() => {}
            _ => report.at(source, &raw.base_url, at("base_url"), "an `http://host[:port][/path]` URL without a query (TLS belongs to the network's proxy or service mesh)"),
        }
        let channel = raw.channel.as_ref().and_then(|c| {
            let parsed = channels.parse(c.get_ref());
            if parsed.is_none() {
                report.at(
                    source,
                    c,
                    at("channel"),
                    format!("`{}` is not a channel of channels.toml", c.get_ref()),
                );
            }
            parsed
        });
        for (c, category) in raw.data_categories.iter().enumerate() {
            if !taxonomy.contains(category.get_ref()) {
                report.at(
                    source,
                    category,
                    at(&format!("data_categories[{c}]")),
                    format!("`{}` is not in the taxonomy", category.get_ref()),
                );
            }
        }
        let timeout = match &raw.timeout_ms {
            None => Duration::from_millis(DEFAULT_TIMEOUT_MS),
            Some(ms) => match u64::try_from(*ms.get_ref())
                .ok()
                .filter(|ms| (1..=60_000).contains(ms))
            {
                Some(ms) => Duration::from_millis(ms),
                None => {
                    report.at(source, ms, at("timeout_ms"), "between 1 and 60000");
                    Duration::from_millis(DEFAULT_TIMEOUT_MS)
                }
            },
        };
        let fallback = match &raw.fallback {
            None => Fallback::Problem,
            Some(f) => {
                let status = u16::try_from(f.get_ref().status)
                    .ok()
                    .filter(|s| (200..=599).contains(s));
                let body = f
                    .get_ref()
                    .body
                    .clone()
                    .map(|b| serde_json::to_value(b).unwrap_or(Value::Null))
                    .unwrap_or(Value::Null);
                match status {
                    Some(status) => Fallback::Static { status, body },
                    None => {
                        report.at(
                            source,
                            f,
                            at("fallback.status"),
                            "an HTTP status between 200 and 599",
                        );
                        Fallback::Problem
                    }
                }
            }
        };
        if report.issues.len() == before {
            upstreams.push(Upstream {
                name,
                base_url,
                purpose: raw.purpose.into_inner(),
                channel,
                data_categories: raw
                    .data_categories
                    .into_iter()
                    .map(|c| c.into_inner())
                    .collect(),
                timeout,
                fallback,
            });
        }
    }
    upstreams
}
