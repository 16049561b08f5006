//! Builds the app: loads policies and keys, opens the database, registers every room's
//! endpoints and binds the listener.

pub mod openapi;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse};
use anyhow::Context;
use utoipa::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use self::openapi::ApiDoc;
use crate::audit::Pseudonymizer;
use crate::auth::{Authenticator, KeyRing};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::consent::evidence::EvidenceHasher;
use crate::consent::receipt::ReceiptSettings;
use crate::gate::decision_log::DecisionLog;
use crate::gate::{notify, Gate};
use crate::http::extract::{path_error, query_error, BodyLimit};
use crate::http::fallback::{self, AllowedMethods};
use crate::http::limits::Limits;
use crate::http::observe::{observe, Draining, Metrics};
use crate::http::AppState;
use crate::policy::Policies;
use crate::storage::Database;
use crate::storage::DatabaseUrl;

/// How long an instance answers from its cache after it last knew it had heard every
/// change; a write whose peers are silent waits a little longer than this.
const CACHE_LEASE: std::time::Duration = std::time::Duration::from_secs(1);

/// Every documented endpoint. Registered with `.service()` so that utoipa collects it.
fn api(cfg: &mut ServiceConfig) {
    use crate::consent::api::{consents as consent_api, preferences as preferences_api, subjects};
    use crate::http::api as health;
    use crate::{auth, gate, policy, profiles};
    // The gate's paths first: the router tries routes in this order, and each route
    // with parameters costs a regular expression to pass over.
    cfg.service(health::healthz)
        .service(gate::api::decisions::decide_one)
        .service(gate::api::decisions::decide_batch)
        .service(gate::api::reach::reach_one)
        .service(gate::api::reach::reach_batch)
        .service(health::readyz)
        .service(health::metrics)
        .service(auth::api::jwks)
        .service(policy::api::list_purposes)
        .service(policy::api::list_channels)
        .service(subjects::put_subject)
        .service(subjects::get_subject)
        // Literal segments before `{purpose}`.
        .service(crate::consent::api::history::consent_history)
        .service(consent_api::list_consents)
        .service(consent_api::post_consents)
        .service(consent_api::put_consent)
        .service(crate::consent::api::receipts::consent_receipt)
        .service(crate::consent::api::signals::post_signals)
        .service(crate::consent::api::signals::post_named_signals)
        .service(preferences_api::get_preferences)
        .service(preferences_api::put_preferences)
        .service(crate::consent::api::identifiers::get_identifiers)
        .service(crate::consent::api::identifiers::put_identifiers)
        .service(profiles::api::get_profile)
        .service(profiles::api::patch_profile)
        .service(gate::api::contacts::record_contact)
        .service(gate::api::proxy::gate_proxy)
        .service(crate::audit::api::verify)
        .service(crate::audit::api::export)
        .service(crate::dsar::api::access::export_subject)
        .service(crate::dsar::api::requests::file_request)
        .service(crate::dsar::api::requests::list_requests)
        .service(crate::dsar::api::requests::get_request)
        .service(crate::dsar::api::requests::request_bundle)
        .service(crate::dsar::api::requests::change_request)
        .service(crate::dsar::api::requests::erase_subject)
        .service(crate::dsar::api::merge::merge_subject)
        .service(crate::delivery::api::notices::request_recipients)
        .service(crate::delivery::api::notices::acknowledge)
        .service(crate::delivery::api::notices::list_recipients)
        // Literal segments before `{id}`.
        .service(crate::delivery::api::webhooks::list_event_types)
        .service(crate::delivery::api::webhooks::create_webhook)
        .service(crate::delivery::api::webhooks::list_webhooks)
        .service(crate::delivery::api::webhooks::get_webhook)
        .service(crate::delivery::api::webhooks::change_webhook)
        .service(crate::delivery::api::webhooks::delete_webhook)
        .service(crate::delivery::api::webhooks::list_deliveries)
        .service(crate::delivery::api::webhooks::replay_webhook)
        .service(crate::surveys::api::events::post_event)
        .service(crate::surveys::api::events::event_feed)
        .service(crate::surveys::api::definitions::create_survey)
        .service(crate::surveys::api::definitions::list_surveys)
        .service(crate::surveys::api::definitions::get_survey)
        .service(crate::surveys::api::definitions::change_survey)
        .service(crate::surveys::api::offers::next_survey)
        .service(crate::surveys::api::offers::dismiss_display)
        .service(crate::surveys::api::responses::submit_answers)
        .service(crate::surveys::api::responses::list_followups)
        .service(crate::surveys::api::responses::change_followup)
        .service(crate::surveys::api::reports::survey_report)
        .service(crate::surveys::api::reports::export_responses)
        .service(crate::journeys::api::journey_report)
        .service(crate::portal::api::links::create_portal_session)
        .service(crate::portal::api::links::create_console_session)
        .service(crate::portal::api::links::create_survey_link);
}

/// The OpenAPI document the server serves, built without starting it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, document) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(api)
        .split_for_parts();
    openapi::finish(document)
}

pub struct Application {
    port: u16,
    server: Server,
    draining: Draining,
    fence: Option<Arc<notify::ChangeFence>>,
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
        crate::journeys::spawn(
            db.manager(),
            policies.clone(),
            pseudonyms.clone(),
            clock.clone(),
            Arc::downgrade(&keys),
        )
        .context("starting the journey sweep")?;
        let listener =
            TcpListener::bind(config.bind).with_context(|| format!("binding {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let metrics = Arc::new(Metrics::new().context("registering metrics")?);
        let evidence =
            EvidenceHasher::load_or_generate(&config.data_dir, config.evidence_secret.as_deref())
                .context("loading the evidence secret")?;
        let mut gate = Gate::new(
            metrics.registry(),
            config.decision_cache_size,
            chrono::TimeDelta::seconds(i64::from(config.decision_token_ttl_seconds)),
            config.jwt.issuer.clone(),
            pseudonyms.clone(),
        )
        .context("registering gate metrics")?;
        if let DatabaseUrl::Postgres(_) = &config.database_url {
            let fence = notify::ChangeFence::new(metrics.registry(), CACHE_LEASE)
                .context("registering fence metrics")?;
            gate = gate.with_fence(Arc::new(fence));
        }
        let gate = Arc::new(gate);
        if let (DatabaseUrl::Postgres(url), Some(fence)) = (&config.database_url, gate.fence()) {
            notify::spawn_listener(
                url.clone(),
                Arc::downgrade(&gate.cache),
                Arc::downgrade(fence),
                std::time::Duration::from_secs(5),
            )
            .context("starting the change listener")?;
        }
        let delivery = {
            let mut settings = config.delivery.clone();
            if let Some(base) = settings.public_url.strip_suffix(":0") {
                settings.public_url = format!("{base}:{port}");
            }
            Arc::new(settings)
        };
        {
            let recipients = policies.recipients.clone();
            let now = clock.now();
            db.run(move |conn| crate::delivery::endpoints::sync_recipients(conn, &recipients, now))
                .await
                .context("keeping recipients' webhooks in step with the policy")?;
        }
        crate::delivery::dispatcher::Dispatcher {
            manager: db.manager(),
            policies: policies.clone(),
            pseudonyms: pseudonyms.clone(),
            settings: (*delivery).clone(),
            clock: clock.clone(),
            metrics: Arc::new(
                crate::delivery::dispatcher::DeliveryMetrics::new(metrics.registry())
                    .context("registering delivery metrics")?,
            ),
        }
        .spawn(Arc::downgrade(&keys))
        .context("starting webhook delivery")?;
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
            trusted_proxies: config.trusted_proxies.clone(),
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
            delivery,
            portal: Arc::new(crate::portal::Portal {
                settings: config.portal.clone().with_port(port),
            }),
            limits: Arc::new(
                Limits::new(
                    config.limits,
                    config.trusted_proxies.clone(),
                    metrics.registry(),
                )
                .context("registering limit metrics")?,
            ),
        });
        let authenticator =
            web::Data::new(Authenticator::new(keys.clone(), config.jwt.clone(), clock));
        let body_limit = web::Data::new(BodyLimit(config.max_body_bytes));
        let openapi = Arc::new(openapi_document());
        let allowed_methods = web::Data::new(Arc::new(AllowedMethods::from_document(&openapi)));

        let draining = Draining::default();
        let stopping = draining.clone();
        let fence = state.gate.fence().cloned();
        let server = crate::http::head::serve(listener, config.workers, move || {
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
                .configure(crate::portal::api::pages)
                .app_data(allowed_methods.clone())
                .default_service(web::to(fallback::no_such_route))
                .wrap_fn(observe(
                    metrics.clone(),
                    state.limits.clone(),
                    draining.clone(),
                ))
        })?;
        Ok(Self {
            port,
            server,
            draining: stopping,
            fence,
            keys,
            policies,
            db,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or SIGINT, then stops taking connections and finishes the
    /// requests in flight (within the server's shutdown bound), closing each connection
    /// after its answer so that clients move on to another instance. Says it is serving
    /// only once the signals are watched, so that an early SIGTERM still stops gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let draining = self.draining.clone();
        let signals = stop_signals();
        tracing::info!(
            port = self.port,
            backend = self.db.backend_name(),
            "consentry is serving"
        );
        if let Some(signals) = signals {
            tokio::spawn(async move {
                signals.await;
                draining.start();
                tracing::info!("stop signal: refusing new connections, finishing those in flight");
                handle.stop(true).await;
            });
        }
        let served = self.server.await;
        if let Some(fence) = &self.fence {
            fence.leave().await;
        }
        served
    }
}

/// A future that completes on SIGTERM or SIGINT; `None` when signals cannot be watched.
fn stop_signals() -> Option<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot watch stop signals; stop the process with SIGKILL");
        return None;
    };
    Some(async move {
        let terminated = Box::pin(terminate.recv());
        let interrupted = Box::pin(interrupt.recv());
        futures_util::future::select(terminated, interrupted).await;
    })
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
