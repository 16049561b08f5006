//! Policies are files: purposes, jurisdictions, the data-category taxonomy and the
//! privacy notices, loaded and checked at start (`consentry policies check` offline).

pub mod api;
pub mod channel;
mod diagnostics;
pub mod identifier_kind;
pub mod journey;
pub mod jurisdiction;
pub mod key;
mod load;
pub mod locale;
pub mod notice;
mod person;
pub mod purpose;
pub mod recipient;
pub mod region;
pub mod retention;
pub mod taxonomy;
pub mod upstreams;

use std::collections::HashMap;

pub use channel::{Channel, Channels};
pub use diagnostics::{PolicyError, PolicyIssue};
pub use identifier_kind::IdentifierKinds;
pub use jurisdiction::{Jurisdiction, Jurisdictions, Period};
pub use load::load;
pub use notice::{Notice, Notices};
pub use person::PersonFacts;
pub use purpose::{Basis, Purpose};
pub use recipient::{Recipient, Recipients};
pub use region::Region;
pub use retention::Retention;
pub use taxonomy::Taxonomy;
pub use upstreams::Upstream;

/// Everything loaded from `policies/`, immutable once built.
#[derive(Debug, Clone)]
pub struct Policies {
    purposes: Vec<Purpose>,
    by_key: HashMap<String, usize>,
    pub jurisdictions: Jurisdictions,
    pub taxonomy: Taxonomy,
    pub notices: Notices,
    /// A digest of the files: which revision of the policies a decision was made under.
    pub revision: String,
    /// Personalization services the reverse-proxy gate forwards to (`gate.toml`).
    pub upstreams: Vec<Upstream>,
    /// How long each kind of data is kept (`retention.toml`).
    pub retention: Retention,
    /// The channel catalogue and default orders (`channels.toml`).
    pub channels: Channels,
    /// The kinds of identifier a customer may be known by (`identifiers.toml`).
    pub identifier_kinds: IdentifierKinds,
    /// Journey stages and the rules that move customers (`journeys.toml`).
    pub journeys: journey::Journeys,
    /// Processors told of changes (`recipients.toml`).
    pub recipients: recipient::Recipients,
}

impl Policies {
    fn new(
        upstreams: Vec<Upstream>,
        purposes: Vec<Purpose>,
        jurisdictions: Jurisdictions,
        taxonomy: Taxonomy,
        notices: Notices,
        revision: String,
    ) -> Self {
        let by_key = purposes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.key.clone(), i))
            .collect();
        Self {
            purposes,
            by_key,
            jurisdictions,
            taxonomy,
            notices,
            revision,
            upstreams,
            retention: Retention::default(),
            channels: Channels::default(),
            identifier_kinds: IdentifierKinds::default(),
            journeys: journey::Journeys::default(),
            recipients: recipient::Recipients::default(),
        }
    }

    /// Purposes in the order the file declares them.
    pub fn purposes(&self) -> &[Purpose] {
        &self.purposes
    }

    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// The channel order for a subject in `region` who chose none.
    pub fn default_channel_order(&self, region: &Region) -> channel::DefaultOrder<'_> {
        let jurisdiction = self.jurisdictions.for_region(region);
        self.channels.default_order(region, &jurisdiction.key)
    }

    pub fn purpose(&self, key: &str) -> Option<&Purpose> {
        self.by_key.get(key).map(|i| &self.purposes[*i])
    }

    /// Locales that purpose texts are written in, for `Accept-Language` negotiation.
    pub fn text_locales(&self) -> Vec<&str> {
        let mut locales: Vec<&str> = self
            .purposes
            .iter()
            .flat_map(|p| p.name.locales())
            .collect();
        locales.sort_unstable();
        locales.dedup();
        locales
    }
}

/// The repository's own policies, for unit tests.
#[cfg(test)]
pub fn shipped() -> Policies {
    load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
        .expect("the shipped policies load")
}

#[cfg(test)]
mod tests;
