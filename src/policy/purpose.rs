//! Purposes: what the company does with data, and the legal basis it needs per jurisdiction.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;

use super::locale::LocalizedText;

/// What the law requires before data may be used for a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Consent needed; no record means deny.
    OptIn,
    /// Allowed until the customer opts out (GPC counts where the purpose says so).
    OptOut,
    /// Allowed until the customer objects.
    LegitimateInterest,
    /// Strictly necessary: always allowed, cannot be refused.
    NoticeOnly,
    /// Never allowed.
    Prohibited,
}

impl Basis {
    pub const ALL: [Basis; 5] = [
        Basis::OptIn,
        Basis::OptOut,
        Basis::LegitimateInterest,
        Basis::NoticeOnly,
        Basis::Prohibited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::OptIn => "opt_in",
            Basis::OptOut => "opt_out",
            Basis::LegitimateInterest => "legitimate_interest",
            Basis::NoticeOnly => "notice_only",
            Basis::Prohibited => "prohibited",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == input)
    }
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The opt-outs that IAB privacy strings (US Privacy, GPP) carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OptOutSignal {
    Sale,
    Sharing,
    TargetedAdvertising,
}

impl OptOutSignal {
    pub const ALL: [OptOutSignal; 3] = [
        OptOutSignal::Sale,
        OptOutSignal::Sharing,
        OptOutSignal::TargetedAdvertising,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OptOutSignal::Sale => "sale",
            OptOutSignal::Sharing => "sharing",
            OptOutSignal::TargetedAdvertising => "targeted_advertising",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

/// The jurisdiction key that every basis table must have.
pub const DEFAULT_BASIS_KEY: &str = "default";

#[derive(Debug, Clone)]
pub struct Purpose {
    pub key: String,
    /// Bumped on a material change; consents given under an older version no longer count.
    pub version: u32,
    pub name: LocalizedText,
    pub description: LocalizedText,
    pub data_categories: Vec<String>,
    /// Whether a Global Privacy Control signal opts the customer out.
    pub gpc: bool,
    /// A sale or sharing purpose: known minors turn `opt_out` into `opt_in`.
    pub sale_or_share: bool,
    /// Which IAB opt-outs (sale, sharing, targeted advertising) withdraw this purpose.
    pub opt_out_signals: Vec<OptOutSignal>,
    /// Re-ask after this many days; `None` never expires.
    pub consent_ttl_days: Option<u32>,
    /// Per jurisdiction key, always with a `default` entry.
    pub basis: BTreeMap<String, Basis>,
}

impl Purpose {
    /// The basis for a jurisdiction, or the purpose's default.
    pub fn basis_for(&self, jurisdiction: &str) -> Basis {
        self.basis
            .get(jurisdiction)
            .or_else(|| self.basis.get(DEFAULT_BASIS_KEY))
            .copied()
            .unwrap_or(Basis::OptIn)
    }

    pub fn parent(&self) -> Option<&str> {
        super::key::parent(&self.key)
    }
}
