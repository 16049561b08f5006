//! Builds the app: loads policies and keys, opens the database, binds the listener.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse};
use anyhow::Context;
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use super::extract::{path_error, query_error, BodyLimit};
use super::fallback::{self, AllowedMethods};
use super::observe::{observe, Metrics};
use super::openapi::ApiDoc;
use crate::audit::Pseudonymizer;
use crate::auth::{Authenticator, KeyRing};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::consent::evidence::EvidenceHasher;
use crate::consent::receipt::ReceiptSettings;
use crate::gate::decision_log::DecisionLog;
use crate::gate::{notify, Gate};
use crate::policy::Policies;
use crate::storage::Database;
use crate::storage::DatabaseUrl;

/// What every handler can reach.
pub struct AppState {
    pub db: Database,
    pub policies: Arc<Policies>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    /// Signs receipts (and, later, decisions and audit checkpoints).
    pub keys: Arc<KeyRing>,
    pub evidence: EvidenceHasher,
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
}

/// Every documented endpoint. Registered with `.service()` so that utoipa collects it.
fn api(cfg: &mut ServiceConfig) {
    use super::health;
    use crate::consent::{consent_api, handlers as subjects, preferences_api};
    use crate::{auth, gate, policy, profiles};
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(auth::handlers::jwks)
        .service(policy::handlers::list_purposes)
        .service(subjects::put_subject)
        .service(subjects::get_subject)
        // Literal segments before `{purpose}`.
        .service(consent_api::consent_history)
        .service(consent_api::list_consents)
        .service(consent_api::post_consents)
        .service(consent_api::put_consent)
        .service(consent_api::consent_receipt)
        .service(consent_api::post_signals)
        .service(preferences_api::get_preferences)
        .service(preferences_api::put_preferences)
        .service(profiles::handlers::get_profile)
        .service(profiles::handlers::patch_profile)
        .service(gate::api::decisions::decide_one)
        .service(gate::api::decisions::decide_batch)
        .service(gate::api::proxy::gate_proxy)
        .service(crate::audit::handlers::verify)
        .service(crate::audit::handlers::export)
        .service(crate::dsar::access::export_subject)
        .service(crate::dsar::handlers::file_request)
        .service(crate::dsar::handlers::list_requests)
        .service(crate::dsar::handlers::get_request)
        .service(crate::dsar::handlers::request_bundle)
        .service(crate::dsar::handlers::change_request)
        .service(crate::dsar::handlers::erase_subject)
        .service(crate::surveys::events_api::post_event)
        .service(crate::surveys::events_api::event_feed)
        .service(crate::surveys::definitions_api::create_survey)
        .service(crate::surveys::definitions_api::list_surveys)
        .service(crate::surveys::definitions_api::get_survey)
        .service(crate::surveys::definitions_api::change_survey)
        .service(crate::surveys::offer_api::next_survey)
        .service(crate::surveys::offer_api::dismiss_display)
        .service(crate::surveys::responses_api::submit_answers)
        .service(crate::surveys::responses_api::list_followups)
        .service(crate::surveys::responses_api::change_followup)
        .service(crate::surveys::report_api::survey_report)
        .service(crate::surveys::report_api::export_responses);
}

/// The OpenAPI document the server serves, built without starting it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, document) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(api)
        .split_for_parts();
    super::openapi::finish(document)
}

pub struct Application {
    port: u16,
    server: Server,
    pub keys: Arc<KeyRing>,
    pub policies: Arc<Policies>,
    pub db: Database,
}

impl Application {
    /// Loads everything and binds; `config.bind` with port 0 picks a free port (tests).
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Self> {
        let policies = Arc::new(crate::policy::load(&config.policies_dir)?);
        let keys = Arc::new(
            KeyRing::load_or_generate(
                &config.data_dir,
                config.signing_key_file.as_deref(),
                clock.now(),
            )
            .context("loading the signing keys")?,
        );
        let db = {
            let (url, pool) = (config.database_url.clone(), config.pool.clone());
            actix_web::rt::task::spawn_blocking(move || Database::open(&url, &pool))
                .await
                .context("opening the database")??
        };
        let pseudonyms = Arc::new(
            Pseudonymizer::load_or_generate(
                &config.data_dir,
                config.audit_pseudonym_secret.as_deref(),
            )
            .context("loading the audit pseudonym secret")?,
        );
        {
            let pseudonyms = pseudonyms.clone();
            let sealed = db
                .run(move |conn| crate::audit::seal_unchained(conn, &pseudonyms))
                .await?;
            if sealed > 0 {
                tracing::info!(sealed, "sealed audit events written before the chain");
            }
        }
        record_policy_load(&db, &pseudonyms, &policies, clock.now()).await?;
        crate::audit::checkpoint::spawn(
            db.manager(),
            Arc::downgrade(&keys),
            i64::from(config.audit_checkpoint_every),
            clock.clone(),
        )
        .context("starting the audit checkpoints")?;
        crate::dsar::retention::spawn(
            db.manager(),
            policies.retention,
            pseudonyms.clone(),
            clock.clone(),
            Arc::downgrade(&keys),
        )
        .context("starting the retention task")?;
        let listener =
            TcpListener::bind(config.bind).with_context(|| format!("binding {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let metrics = Arc::new(Metrics::new().context("registering metrics")?);
        let evidence = EvidenceHasher::load_or_generate(
            &config.data_dir,
            config.evidence_secret.as_deref(),
            config.trusted_proxies.clone(),
        )
        .context("loading the evidence secret")?;
        let gate = Arc::new(
            Gate::new(
                metrics.registry(),
                config.decision_cache_size,
                chrono::TimeDelta::seconds(i64::from(config.decision_token_ttl_seconds)),
                config.jwt.issuer.clone(),
                pseudonyms.clone(),
            )
            .context("registering gate metrics")?,
        );
        if let DatabaseUrl::Postgres(url) = &config.database_url {
            notify::spawn_listener(
                url.clone(),
                Arc::downgrade(&gate.cache),
                std::time::Duration::from_secs(5),
            )
            .context("starting the change listener")?;
        }
        let decision_log =
            DecisionLog::start(config.decision_log_sample, db.manager(), metrics.registry())
                .context("starting the decision log")?;
        let state = web::Data::new(AppState {
            db: db.clone(),
            policies: policies.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            keys: keys.clone(),
            evidence,
            pseudonyms,
            receipts: ReceiptSettings {
                issuer: config.jwt.issuer.clone(),
                controller: config.controller_name.clone(),
                policy_url: config.privacy_policy_url.clone(),
            },
            gate,
            decision_log,
            survey_recontact_days: config.survey_recontact_days,
            surveys: Arc::new(
                crate::surveys::metrics::SurveyMetrics::new(metrics.registry())
                    .context("registering survey metrics")?,
            ),
        });
        let authenticator =
            web::Data::new(Authenticator::new(keys.clone(), config.jwt.clone(), clock));
        let body_limit = web::Data::new(BodyLimit(config.max_body_bytes));
        let openapi = Arc::new(openapi_document());
        let allowed_methods = web::Data::new(Arc::new(AllowedMethods::from_document(&openapi)));

        let server = super::head::serve(listener, config.workers, move || {
            let (app, _) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                .app_data(state.clone())
                .app_data(authenticator.clone())
                .app_data(body_limit.clone())
                // One client per worker: awc is not Send. No redirects: the upstream's
                // answer is the caller's to follow.
                .app_data(web::Data::new(
                    awc::Client::builder().disable_redirects().finish(),
                ))
                .app_data(web::PathConfig::default().error_handler(path_error))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .configure(api)
                .split_for_parts();
            app.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", (*openapi).clone()))
                .route(
                    "/docs",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect()
                            .insert_header(("Location", "/docs/"))
                            .finish()
                    }),
                )
                .app_data(allowed_methods.clone())
                .default_service(web::to(fallback::no_such_route))
                .wrap_fn(observe(metrics.clone()))
        })?;
        Ok(Self {
            port,
            server,
            keys,
            policies,
            db,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Every start records which policies it serves under, so that the audit log says which
/// rules were in force when.
async fn record_policy_load(
    db: &Database,
    pseudonyms: &Arc<Pseudonymizer>,
    policies: &Policies,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let pseudonyms = pseudonyms.clone();
    let payload = serde_json::json!({
        "revision": policies.revision,
        "purposes": policies.purposes().iter().map(|p| serde_json::json!({"key": p.key, "version": p.version})).collect::<Vec<_>>(),
        "jurisdictions": policies.jurisdictions.iter().count(),
    });
    db.run(move |conn| {
        crate::audit::record_alone(
            conn,
            &pseudonyms,
            crate::audit::AuditEntry {
                actor: &crate::audit::Actor::operator(),
                action: "policy.loaded",
                subject_id: None,
                payload,
                at: now,
            },
        )
    })
    .await
    .context("recording the policy load")
}
