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
