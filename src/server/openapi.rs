//! The OpenAPI document, collected from the handlers themselves.

use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayItems, ObjectBuilder, Schema,
    SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
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
        crate::consent::preferences::ChannelPreference,
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
        (name = "journeys", description = "Journey stages derived from events, NPS answers and time, and their report"),
        (name = "webhooks", description = "Changes pushed to downstream systems: endpoints, signed deliveries by the Standard Webhooks specification, attempts, dead letters and replays"),
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
///   each documents its 429;
/// - every parameter is checked for control characters before routing, so an operation
///   with parameters documents 422.
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
            if operation.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                operation
                    .responses
                    .responses
                    .entry("422".into())
                    .or_insert_with(|| bad_parameter().into());
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
    let mut document = forbid_control_characters(document);
    if let Some(components) = document.components.as_mut() {
        components
            .schemas
            .insert(JSON_VALUE.into(), json_value().into());
        require_any(
            components,
            "SignalsRequest",
            [
                ("usp", string().into()),
                ("gpp", string().into()),
                (
                    "gpc",
                    ObjectBuilder::new()
                        .schema_type(Type::Boolean)
                        .enum_values(Some([true]))
                        .into(),
                ),
            ],
        );
        require_any(
            components,
            "RequestChange",
            [
                ("status", Ref::from_schema_name("RequestStatus").into()),
                ("extend", Ref::from_schema_name("Extension").into()),
            ],
        );
    }
    document
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A body its handler refuses unless it holds at least one of `fields`, not null: the
/// schema becomes its own fields and `anyOf` the fields it needs one of.
fn require_any<const N: usize>(
    components: &mut utoipa::openapi::Components,
    name: &str,
    fields: [(&str, RefOr<Schema>); N],
) {
    let Some(schema) = components.schemas.get_mut(name) else {
        return;
    };
    let mut any = AnyOfBuilder::new();
    for (field, value) in fields {
        any = any.item(ObjectBuilder::new().property(field, value).required(field));
    }
    let own = std::mem::replace(schema, Schema::default().into());
    *schema = AllOfBuilder::new().item(own).item(any).into();
}

/// The schema of free-form JSON (`http::printable` holds it to the rules of all text):
/// what a free-form value or object member refers to.
const JSON_VALUE: &str = "JsonValue";

fn json_value() -> Schema {
    // Said in words, not as a schema: "any JSON whose text holds no control characters"
    // refers to itself, and client generators cannot build a type from a recursive
    // union. The server holds free-form values to the rules of all text at any depth.
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "Any JSON value; its text holds no control characters but tab, line feed and carriage return, its keys none.",
        ))
        .into()
}

/// What `http::printable` refuses, said in the document so that generated clients and
/// test generators know: body text may hold tab, line feed and carriage return but no
/// other control character; paths, queries and object keys none at all.
const BODY_TEXT: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";
const URI_TEXT: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

fn forbid_control_characters(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for (_, item) in document.paths.paths.iter_mut() {
        for (_, operation) in operations_mut(item) {
            for parameter in operation.parameters.iter_mut().flatten() {
                if let Some(schema) = parameter.schema.as_mut() {
                    add_patterns(schema, URI_TEXT);
                }
            }
            let bodies = operation.request_body.iter_mut();
            for content in bodies.flat_map(|body| body.content.values_mut()) {
                if let Some(schema) = content.schema.as_mut() {
                    add_patterns(schema, BODY_TEXT);
                }
            }
        }
    }
    if let Some(components) = document.components.as_mut() {
        for schema in components.schemas.values_mut() {
            add_patterns(schema, BODY_TEXT);
        }
    }
    document
}

/// Every string schema without a pattern or an enum gets `pattern`; every map's keys get
/// the stricter one.
fn add_patterns(schema: &mut utoipa::openapi::RefOr<utoipa::openapi::Schema>, pattern: &str) {
    if let utoipa::openapi::RefOr::T(inner) = schema {
        if let Some(description) = any_value(inner) {
            // Free-form: any JSON value, held to the same rules all the way down.
            let mut reference = Ref::from_schema_name(JSON_VALUE);
            reference.description = description;
            *schema = reference.into();
            return;
        }
        add_patterns_to(inner, pattern);
    }
}

/// Whether a schema says nothing but "any value" (and its description).
fn any_value(schema: &Schema) -> Option<String> {
    match schema {
        Schema::Object(object)
            if object.schema_type == SchemaType::AnyValue
                && object.properties.is_empty()
                && object.enum_values.is_none()
                && object.additional_properties.is_none() =>
        {
            Some(object.description.clone().unwrap_or_default())
        }
        _ => None,
    }
}

fn add_patterns_to(schema: &mut utoipa::openapi::Schema, pattern: &str) {
    let has = |schema_type: &SchemaType, wanted: Type| match schema_type {
        SchemaType::Type(t) => *t == wanted,
        SchemaType::Array(types) => types.contains(&wanted),
        SchemaType::AnyValue => false,
    };
    match schema {
        Schema::Object(object) => {
            if has(&object.schema_type, Type::String)
                && object.pattern.is_none()
                && object.enum_values.is_none()
            {
                object.pattern = Some(pattern.into());
            }
            // An object that names no members is a map of free-form values.
            let free_form = has(&object.schema_type, Type::Object)
                && object.properties.is_empty()
                && !matches!(
                    object.additional_properties.as_deref(),
                    Some(AdditionalProperties::FreeForm(false))
                        | Some(AdditionalProperties::RefOr(_))
                );
            if free_form {
                object.additional_properties = Some(Box::new(AdditionalProperties::RefOr(
                    Ref::from_schema_name(JSON_VALUE).into(),
                )));
            }
            let map = match object.additional_properties.as_deref_mut() {
                Some(AdditionalProperties::RefOr(values)) => {
                    add_patterns(values, pattern);
                    true
                }
                Some(AdditionalProperties::FreeForm(open)) => *open,
                None => false,
            };
            if map {
                let keys = object.property_names.get_or_insert_with(|| {
                    Box::new(Schema::Object(
                        ObjectBuilder::new().schema_type(Type::String).build(),
                    ))
                });
                if let Schema::Object(keys) = keys.as_mut() {
                    if keys.pattern.is_none() && keys.enum_values.is_none() {
                        keys.pattern = Some(URI_TEXT.into());
                    }
                }
            }
            for property in object.properties.values_mut() {
                add_patterns(property, pattern);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                add_patterns(items, pattern);
            }
            for item in &mut array.prefix_items {
                add_patterns_to(item, pattern);
            }
        }
        Schema::OneOf(one_of) => one_of
            .items
            .iter_mut()
            .for_each(|s| add_patterns(s, pattern)),
        Schema::AllOf(all_of) => all_of
            .items
            .iter_mut()
            .for_each(|s| add_patterns(s, pattern)),
        Schema::AnyOf(any_of) => any_of
            .items
            .iter_mut()
            .for_each(|s| add_patterns(s, pattern)),
        _ => {}
    }
}

fn bad_parameter() -> utoipa::openapi::Response {
    problem_response(
        "A parameter is malformed, out of range or holds control characters; `errors` names it.",
    )
    .build()
}

fn problem_response(description: &str) -> utoipa::openapi::ResponseBuilder {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

fn too_many_requests() -> utoipa::openapi::Response {
    use utoipa::openapi::{schema::Type, HeaderBuilder, ObjectBuilder};
    problem_response(
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
