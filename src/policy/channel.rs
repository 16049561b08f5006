//! The channels a customer can be reached on. They come from `policies/channels.toml`:
//! the catalogue (each channel's contact data category, display names, and the
//! jurisdictions where it needs an explicit opt-in) and the order a customer gets when
//! they have not chosen one, by country or jurisdiction. Adding a channel is an edit of
//! that file.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::locale::LocalizedText;
use super::Region;
use crate::validation::FieldError;

/// A channel of the catalogue, by name (`email`, `whatsapp`, ...). Only `Channels::parse`
/// makes one, so holding one means the policies know it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(Arc<str>);

impl Channel {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Whether a string could name a channel: lower-case letters, digits and `_`, starting
/// with a letter, at most 32 bytes.
pub fn is_channel_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=32).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// The pattern `is_channel_name` checks, for the OpenAPI document.
pub const CHANNEL_NAME_PATTERN: &str = "^[a-z][a-z0-9_]{0,31}$";

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    pub channel: Channel,
    /// The contact data category the channel uses (`user.contact.email`).
    pub category: String,
    pub names: LocalizedText,
    /// Jurisdictions (keys) where a message on this channel needs the customer's explicit
    /// opt-in to the channel, whatever the purpose's basis.
    pub opt_in_required: Vec<String>,
}

impl ChannelSpec {
    /// The channel's name in `locale` (English, else its key, when there is none).
    pub fn display_name(&self, locale: &str) -> &str {
        self.names.get(locale).unwrap_or(self.channel.as_str())
    }
}

/// A subject's default channel order and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultOrder<'a> {
    pub channels: &'a [Channel],
    /// `BR`, `eea` or `default`.
    pub from: &'a str,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Channels {
    specs: Vec<ChannelSpec>,
    by_name: HashMap<Arc<str>, usize>,
    /// Keyed as the file writes them: a region code (`BR`, `US-CA`, upper case), a
    /// jurisdiction key (`eea`, lower case) or `default`.
    orders: HashMap<String, Vec<Channel>>,
}

impl Channels {
    /// Builds the catalogue; the loader has checked names, orders and categories, and
    /// that `default` is among the orders.
    pub fn new(specs: Vec<ChannelSpec>, orders: HashMap<String, Vec<Channel>>) -> Self {
        let by_name = specs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.channel.0.clone(), i))
            .collect();
        Self {
            specs,
            by_name,
            orders,
        }
    }

    /// A channel made for the catalogue being built (the loader only).
    pub(super) fn declare(name: &str) -> Channel {
        Channel(Arc::from(name))
    }

    pub fn parse(&self, name: &str) -> Option<Channel> {
        self.by_name
            .get(name)
            .map(|i| self.specs[*i].channel.clone())
    }

    pub fn spec(&self, channel: &Channel) -> Option<&ChannelSpec> {
        self.by_name.get(channel.as_str()).map(|i| &self.specs[*i])
    }

    /// In the order the file declares them.
    pub fn all(&self) -> &[ChannelSpec] {
        &self.specs
    }

    /// The channel `name`, or a 422 field error naming `field` and listing the channels.
    pub fn checked(&self, name: &str, field: String) -> Result<Channel, FieldError> {
        self.parse(name).ok_or_else(|| {
            FieldError::new(
                field,
                "unknown_channel",
                format!("`{name}` is not a channel (one of {})", self.listed()),
            )
        })
    }

    /// `email, sms, ...`, for messages that list what is allowed.
    pub fn listed(&self) -> String {
        self.specs
            .iter()
            .map(|s| s.channel.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The order for a subject who chose none: their region's, else their country's,
    /// else their jurisdiction's, else the default.
    pub fn default_order<'a>(&'a self, region: &Region, jurisdiction: &str) -> DefaultOrder<'a> {
        [region.as_str(), region.country(), jurisdiction, "default"]
            .into_iter()
            .find_map(|key| self.orders.get_key_value(key))
            .map_or_else(
                || self.fallback_order(),
                |(from, channels)| DefaultOrder { channels, from },
            )
    }

    /// The order for a subject of no known region: the file's `default`.
    pub fn fallback_order(&self) -> DefaultOrder<'_> {
        DefaultOrder {
            channels: self.orders.get("default").map_or(&[], Vec::as_slice),
            from: "default",
        }
    }

    /// Every default order, keyed as the file writes them (`default` included).
    pub fn orders(&self) -> impl Iterator<Item = (&str, &[Channel])> {
        self.orders
            .iter()
            .map(|(key, list)| (key.as_str(), list.as_slice()))
    }

    /// Whether a message on `channel` needs the customer's opt-in to it in `jurisdiction`.
    pub fn needs_opt_in(&self, channel: &Channel, jurisdiction: &str) -> bool {
        self.spec(channel)
            .is_some_and(|s| s.opt_in_required.iter().any(|j| j == jurisdiction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Channels {
        let spec = |name: &str, opt_in: &[&str]| ChannelSpec {
            channel: Channels::declare(name),
            category: "user.contact".into(),
            names: LocalizedText([("en".to_owned(), name.to_owned())].into()),
            opt_in_required: opt_in.iter().map(|s| s.to_string()).collect(),
        };
        let specs = vec![
            spec("email", &[]),
            spec("sms", &["eea", "us_ca"]),
            spec("whatsapp", &["eea"]),
        ];
        let c = |name: &str| Channels::declare(name);
        let orders = HashMap::from([
            ("BR".to_owned(), vec![c("whatsapp"), c("email")]),
            ("US".to_owned(), vec![c("email"), c("sms")]),
            ("US-CA".to_owned(), vec![c("sms"), c("email")]),
            ("eea".to_owned(), vec![c("email")]),
            ("default".to_owned(), vec![c("email")]),
        ]);
        Channels::new(specs, orders)
    }

    fn order(channels: &Channels, region: &str, jurisdiction: &str) -> (Vec<String>, String) {
        let region = Region::parse(region).unwrap();
        let found = channels.default_order(&region, jurisdiction);
        (
            found.channels.iter().map(|c| c.to_string()).collect(),
            found.from.to_owned(),
        )
    }

    #[test]
    fn the_default_order_goes_from_subdivision_to_country_to_jurisdiction_to_default() {
        let channels = catalogue();
        let cases = [
            ("US-CA", "us_ca", vec!["sms", "email"], "US-CA"),
            ("US-NY", "us_other", vec!["email", "sms"], "US"),
            ("BR", "br", vec!["whatsapp", "email"], "BR"),
            ("DE", "eea", vec!["email"], "eea"),
            ("JP", "default", vec!["email"], "default"),
        ];
        for (region, jurisdiction, expected, from) in cases {
            let expected: Vec<String> = expected.into_iter().map(String::from).collect();
            assert_eq!(
                order(&channels, region, jurisdiction),
                (expected, from.to_owned()),
                "{region}"
            );
        }
    }

    #[test]
    fn only_catalogue_names_parse() {
        let channels = catalogue();
        assert_eq!(channels.parse("sms").unwrap().as_str(), "sms");
        assert!(channels.parse("SMS").is_none());
        assert!(channels.parse("pigeon").is_none());
        assert_eq!(channels.listed(), "email, sms, whatsapp");
    }

    #[test]
    fn opt_in_is_needed_where_the_channel_says() {
        let channels = catalogue();
        let sms = channels.parse("sms").unwrap();
        assert!(channels.needs_opt_in(&sms, "eea"));
        assert!(channels.needs_opt_in(&sms, "us_ca"));
        assert!(!channels.needs_opt_in(&sms, "us_other"));
        let email = channels.parse("email").unwrap();
        assert!(!channels.needs_opt_in(&email, "eea"));
    }

    #[test]
    fn channel_names_are_lower_case_words() {
        for good in ["email", "in_app", "line", "x1"] {
            assert!(is_channel_name(good), "{good}");
        }
        for bad in ["", "Email", "1email", "e-mail", "e mail", &"a".repeat(33)] {
            assert!(!is_channel_name(bad), "{bad}");
        }
    }
}
