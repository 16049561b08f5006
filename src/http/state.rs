//! What every handler can reach, built once by the server.

use std::sync::Arc;

use super::observe::Metrics;
use crate::audit::Pseudonymizer;
use crate::auth::KeyRing;
use crate::clock::SharedClock;
use crate::consent::evidence::EvidenceHasher;
use crate::consent::receipt::ReceiptSettings;
use crate::gate::decision_log::DecisionLog;
use crate::gate::Gate;
use crate::policy::Policies;
use crate::storage::Database;

/// What every handler can reach.
pub struct AppState {
    pub db: Database,
    pub policies: Arc<Policies>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    /// Signs receipts (and, later, decisions and audit checkpoints).
    pub keys: Arc<KeyRing>,
    pub evidence: EvidenceHasher,
    /// Whose forwarding headers are believed (`CONSENTRY_TRUSTED_PROXIES`).
    pub trusted_proxies: super::client_ip::TrustedProxies,
    /// Keyed pseudonyms of subjects in the audit chain.
    pub pseudonyms: Arc<Pseudonymizer>,
    pub receipts: ReceiptSettings,
    /// The decision cache and its metrics.
    pub gate: Arc<Gate>,
    /// The sampled decision log, when switched on.
    pub decision_log: Option<Arc<DecisionLog>>,
    /// The least number of days between two survey displays to one subject.
    pub survey_recontact_days: u32,
    pub surveys: Arc<crate::surveys::metrics::SurveyMetrics>,
    /// Portal links, sessions and their door limit.
    pub portal: Arc<crate::portal::Portal>,
}
