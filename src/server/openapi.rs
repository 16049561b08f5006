//! The OpenAPI document, collected from the handlers themselves.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Consentry",
        description = "Consents and data-use preferences under GDPR and CCPA/CPRA, the consent gate other services ask before they personalize, surveys, and a tamper-evident audit log.\n\nErrors are RFC 9457 `application/problem+json` documents; invalid fields are listed in `errors`.",
        license(name = "Apache-2.0"),
    ),
    // Schemas only query parameters or hand-written schemas refer to: utoipa collects
    // those the bodies' types reach, so without these their `$ref`s would point nowhere.
    components(schemas(
        crate::profiles::changes::AttributeInput,
        crate::audit::api::ExportFormat,
        crate::surveys::report::Interval,
        crate::surveys::api::reports::ResponseFormat,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "keys", description = "Public keys for verifying what Consentry signs"),
        (name = "purposes", description = "What data is used for, from the policy files"),
        (name = "subjects", description = "Customers whose consents Consentry keeps"),
        (name = "consents", description = "The consent ledger, effective state, receipts and privacy signals"),
        (name = "preferences", description = "Channels, frequency, language, time zone and quiet hours"),
        (name = "profiles", description = "Profile attributes with their data categories, read per purpose"),
        (name = "decisions", description = "The gate: may this data be used for this purpose, now?"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "dsar", description = "Data subject requests and their deadlines"),
        (name = "events", description = "Customer events that trigger surveys, and the feed downstream services read"),
        (name = "surveys", description = "NPS, CSAT and onboarding surveys: definitions, the survey to show now, answers written back to profiles, follow-ups and reports"),
    ),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some(
            "A JWT with `role` (admin, compliance, service, subject), `iss`, `aud`, `exp`; `sub` is the subject id for the subject role. `consentry token` mints one."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

/// Completes the document the handlers give:
/// - each operation gets its own id: one handler serving several methods (the proxy
///   gate) shares one, and client generators keep a single operation per id, silently
///   dropping the others; the first keeps the id, the rest add their method;
/// - a parameter declared by a shared `IntoParams` type (the subject in the path) is
///   added again, plainly, for the handler's `web::Path` argument; the declared one is
///   kept (a repeated parameter makes clients skip the operation);
/// - every operation but liveness may be refused by an abuse limit (`http::limits`), so
///   each documents its 429.
pub fn finish(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut ids = std::collections::HashSet::new();
    for (path, item) in document.paths.paths.iter_mut() {
        let limited = crate::http::limits::is_limited_anonymous(path);
        for (method, operation) in operations_mut(item) {
            if limited {
                operation
                    .responses
                    .responses
                    .entry("429".into())
                    .or_insert_with(|| too_many_requests().into());
            }
            if let Some(id) = operation.operation_id.clone() {
                if !ids.insert(id.clone()) {
                    let unique = format!("{id}_{method}");
                    ids.insert(unique.clone());
                    operation.operation_id = Some(unique);
                }
            }
            if let Some(parameters) = operation.parameters.as_mut() {
                let mut seen = Vec::new();
                parameters.retain(|p| {
                    let key = (p.name.clone(), p.parameter_in.clone());
                    let first = !seen.contains(&key);
                    seen.push(key);
                    first
                });
            }
        }
    }
    document
}

fn too_many_requests() -> utoipa::openapi::Response {
    use utoipa::openapi::{
        schema::Type, ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, ResponseBuilder,
    };
    ResponseBuilder::new()
        .description(
            "Over an abuse limit (per client address without credentials or with a rejected \
             token, per token subject on writes); retry after `Retry-After` seconds.",
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("Seconds to wait before retrying"))
                .build(),
        )
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn operations_mut(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &mut utoipa::openapi::path::Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|o| (method, o)))
}
