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
    /// How webhooks are checked and signed.
    pub delivery: Arc<crate::delivery::DeliverySettings>,
    /// Portal links and sessions.
    pub portal: Arc<crate::portal::Portal>,
    /// Abuse limits by client address and token subject.
    pub limits: Arc<super::limits::Limits>,
}

impl AppState {
    /// What an audit export streams from.
    pub fn export_sources(&self) -> crate::audit::export::stream::Sources {
        crate::audit::export::stream::Sources {
            db: self.db.clone(),
            keys: self.keys.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// A response that streams chunks as they come. A failed chunk ends the body there (the
/// client sees it cut short; an audit export then has no seal) and is logged.
pub fn streamed<S, E>(content_type: &str, chunks: S) -> actix_web::HttpResponse
where
    S: futures_util::Stream<Item = Result<Vec<u8>, E>> + 'static,
    E: std::fmt::Display,
{
    use futures_util::StreamExt;
    let body = chunks.map(|chunk| match chunk {
        Ok(bytes) => Ok(actix_web::web::Bytes::from(bytes)),
        Err(err) => {
            tracing::error!(error = %err, "a streamed response stopped");
            Err(actix_web::error::ErrorInternalServerError("stream failed"))
        }
    });
    actix_web::HttpResponse::Ok()
        .content_type(content_type)
        .streaming(body)
}
