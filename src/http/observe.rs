//! Metrics, request logs, security headers and the panic guard, in one middleware so that every request
//! is counted, logged by its route pattern (never its path: paths hold subject ids), and
//! a panicking handler answers 500 instead of taking the worker down.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::http::ConnectionType;
use actix_web::http::Method;
use actix_web::Error;
use futures_util::FutureExt;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use super::limits::{is_limited_anonymous, Limits, Refused};
use super::problem::ApiError;
use crate::storage::Database;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    panics: prometheus::IntCounter,
    log_lines_dropped: prometheus::IntCounter,
    write_batches: prometheus::IntCounter,
    writes: prometheus::IntCounter,
    pool_max: IntGauge,
    pool_open: IntGauge,
    pool_idle: IntGauge,
    pool_in_use: IntGauge,
    /// Paths known to be routes without parameters: their label is the path itself.
    static_routes: quick_cache::sync::Cache<String, ()>,
}

/// Routes without parameters are few; a bound keeps the set small whatever comes in.
const STATIC_ROUTES: usize = 512;

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("consentry".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route pattern and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route pattern",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?;
        let panics =
            prometheus::IntCounter::new("http_handler_panics_total", "Handlers that panicked")?;
        let log_lines_dropped = prometheus::IntCounter::new(
            "log_lines_dropped_total",
            "Log lines dropped because the log writer's queue was full",
        )?;
        let write_batches = prometheus::IntCounter::new(
            "db_write_batches_total",
            "Group-commit transactions: queued writes committed together",
        )?;
        let writes = prometheus::IntCounter::new(
            "db_writes_total",
            "Writes run in group-commit transactions",
        )?;
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let pool_max = gauge(
            "db_pool_max_connections",
            "Largest number of pooled database connections",
        )?;
        let pool_open = gauge(
            "db_pool_open_connections",
            "Open pooled database connections",
        )?;
        let pool_idle = gauge(
            "db_pool_idle_connections",
            "Idle pooled database connections",
        )?;
        let pool_in_use = gauge(
            "db_pool_in_use_connections",
            "Pooled database connections in use",
        )?;
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(panics.clone()),
            Box::new(log_lines_dropped.clone()),
            Box::new(write_batches.clone()),
            Box::new(writes.clone()),
            Box::new(pool_max.clone()),
            Box::new(pool_open.clone()),
            Box::new(pool_idle.clone()),
            Box::new(pool_in_use.clone()),
        ] {
            registry.register(collector)?;
        }
        Ok(Self {
            registry,
            requests,
            latency,
            panics,
            log_lines_dropped,
            write_batches,
            writes,
            pool_max,
            pool_open,
            pool_idle,
            pool_in_use,
            static_routes: quick_cache::sync::Cache::new(STATIC_ROUTES),
        })
    }

    /// The route pattern a request to `path` matched, for labels and logs; `unmatched`
    /// when none did. Finding the pattern runs the router's matching again (a regular
    /// expression for each route with parameters), so a path that matched a route
    /// without parameters is remembered, and answered as the path itself: the hot
    /// paths (`/v1/decisions`, `/healthz`) are.
    pub fn route_of<'a>(&self, request: &actix_web::HttpRequest, path: &'a str) -> Cow<'a, str> {
        let without_parameters = request.match_info().segment_count() == 0;
        if without_parameters && self.static_routes.get(path).is_some() {
            return Cow::Borrowed(path);
        }
        match request.match_pattern() {
            Some(pattern) => {
                if without_parameters && pattern == path {
                    self.static_routes.insert(pattern.clone(), ());
                }
                Cow::Owned(pattern)
            }
            None => Cow::Borrowed("unmatched"),
        }
    }

    /// Other rooms register their own collectors here (decisions, surveys...).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The Prometheus text exposition, with the pool read at scrape time.
    pub fn render(&self, db: &Database) -> String {
        let pool = db.pool_state();
        // The writer counts drops itself; the metric catches up when scraped.
        let dropped = DROPPED_LOG_LINES.get().map_or(0, |count| count());
        self.log_lines_dropped
            .inc_by(dropped.saturating_sub(self.log_lines_dropped.get()));
        let (batches, writes) = db.write_counts();
        self.write_batches
            .inc_by(batches.saturating_sub(self.write_batches.get()));
        self.writes.inc_by(writes.saturating_sub(self.writes.get()));
        self.pool_max.set(i64::from(pool.max));
        self.pool_open.set(i64::from(pool.open));
        self.pool_idle.set(i64::from(pool.idle));
        self.pool_in_use
            .set(i64::from(pool.open.saturating_sub(pool.idle)));
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Where `/metrics` reads how many log lines the log writer dropped (set by
/// `telemetry::init`, which owns the writer).
static DROPPED_LOG_LINES: std::sync::OnceLock<Box<dyn Fn() -> u64 + Send + Sync>> =
    std::sync::OnceLock::new();

pub fn count_dropped_log_lines(count: impl Fn() -> u64 + Send + Sync + 'static) {
    let _ = DROPPED_LOG_LINES.set(Box::new(count));
}

/// The method as a metric label and log field: the standard methods by name, anything
/// else `other`, so that invented methods cannot create new series.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Set once a stop signal came: answers then close their connections.
#[derive(Clone, Default)]
pub struct Draining(std::sync::Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn started(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A request without credentials spends its address's share before anything else runs;
/// one with a token is judged by the token (see `Principal`).
fn anonymous_share(limits: &Limits, req: &ServiceRequest) -> Result<(), Refused> {
    if req.headers().contains_key(AUTHORIZATION) || !is_limited_anonymous(req.path()) {
        return Ok(());
    }
    limits
        .anonymous
        .check(&limits.client_of(req.peer_addr().map(|a| a.ip()), req.headers()))
}

/// The middleware body, used with `App::wrap_fn`.
pub fn observe<S>(
    metrics: std::sync::Arc<Metrics>,
    limits: std::sync::Arc<Limits>,
    draining: Draining,
) -> impl Fn(
    ServiceRequest,
    &S,
) -> futures_util::future::LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, Error>>
       + Clone
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = Error>,
    S::Future: 'static,
{
    move |req: ServiceRequest, srv: &S| {
        let started = Instant::now();
        let method = method_label(req.method());
        let admitted = super::printable::check_uri(req.path(), req.query_string())
            .map_err(|field| ApiError::Validation(vec![field]))
            .and_then(|()| anonymous_share(&limits, &req).map_err(ApiError::from));
        let call = match admitted {
            Ok(()) => AssertUnwindSafe(srv.call(req)).catch_unwind().boxed_local(),
            Err(error) => {
                let refused = req.error_response(error);
                async move { Ok(Ok(refused)) }.boxed_local()
            }
        };
        let metrics = metrics.clone();
        let draining = draining.clone();
        Box::pin(async move {
            let mut response = match call.await {
                Ok(result) => result?,
                Err(_) => {
                    // The request went down with the handler; actix turns this error
                    // into the problem response.
                    metrics.panics.inc();
                    metrics.observe(method, "panicked", 500, started.elapsed().as_secs_f64());
                    tracing::error!(method, "a handler panicked; answered 500");
                    return Err(ApiError::Internal(anyhow::anyhow!("handler panicked")).into());
                }
            };
            if draining.started() {
                // Keep-alive would let a client go on sending here until the forced stop.
                let head = response.response_mut().head_mut();
                head.set_connection_type(ConnectionType::Close);
            }
            let path = response.request().path().to_owned();
            let route = metrics.route_of(response.request(), &path);
            super::headers::apply(&path, response.headers_mut());
            let status = response.status().as_u16();
            let elapsed = started.elapsed();
            metrics.observe(method, &route, status, elapsed.as_secs_f64());
            tracing::info!(
                method,
                route = &*route,
                status,
                latency_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
            Ok(response)
        })
    }
}
