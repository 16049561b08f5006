//! The reverse-proxy gate: `ANY /gate/{upstream}/{path}` forwards to a personalization
//! service only when the decision allows, with the signed decision attached; otherwise
//! it answers the upstream's fallback.

use std::collections::HashSet;

use actix_web::http::header::{self, HeaderName};
use actix_web::http::StatusCode;
use actix_web::{route, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use super::{observe, snapshot_for_request};
use crate::auth::{Principal, Role};
use crate::consent::signals::request_gpc;
use crate::consent::SubjectId;
use crate::gate::rules::decide_for;
use crate::gate::rules::DecisionRequest;
use crate::http::extract::BodyLimit;
use crate::http::responses::AuthProblems;
use crate::http::{ApiError, AppState, Problem};
use crate::policy::upstreams::{Fallback, Upstream};

pub const SUBJECT_HEADER: &str = "x-subject-id";
pub const DECISION_HEADER: &str = "x-consent-decision";
const CALLERS: [Role; 1] = [Role::Service];

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1), and ones the
/// proxy owns.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// The part of the raw request path after `/gate/{upstream}/`, refused if it could climb
/// out of the upstream's base path or mean something else to the upstream than it did to
/// the gate: `..` and `.` (plain or encoded), empty segments (`//`), `;` parameters
/// (`..;/` reaches the parent on some servers), double encoding (`%252e`), encoded
/// slashes or backslashes, control characters.
pub fn safe_tail(raw_path: &str, upstream: &str) -> Result<String, String> {
    let prefix = format!("/gate/{upstream}");
    let tail = raw_path.strip_prefix(&prefix).unwrap_or_default();
    let tail = tail.strip_prefix('/').unwrap_or(tail);
    let segments: Vec<&str> = tail.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        if segment.is_empty() && !last {
            return Err("empty path segments (`//`) are not allowed".into());
        }
        if segment.contains(';') {
            return Err("`;` path parameters are not allowed".into());
        }
        let decoded = percent_decode(segment).ok_or("the path is not valid percent-encoding")?;
        if decoded == "." || decoded == ".." {
            return Err("`.` and `..` segments are not allowed".into());
        }
        if decoded.contains('%') {
            return Err("double percent-encoding is not allowed in the path".into());
        }
        if decoded.contains(['/', '\\', ';']) || decoded.chars().any(char::is_control) {
            return Err(
                "encoded slashes, backslashes, semicolons and control characters are not allowed in the path"
                    .into(),
            );
        }
    }
    Ok(tail.to_owned())
}

/// The one `X-Subject-Id` of a request: two are refused, since the upstream might read
/// the one the gate did not decide on.
fn subject_header(req: &HttpRequest) -> Result<SubjectId, ApiError> {
    let mut values = req.headers().get_all(SUBJECT_HEADER);
    let first = values.next().ok_or_else(|| {
        ApiError::invalid(
            "X-Subject-Id",
            "the header is required: the subject the call is about",
        )
    })?;
    if values.next().is_some() {
        return Err(ApiError::BadRequest(
            "Send `X-Subject-Id` once: the gate decides on one subject.".into(),
        ));
    }
    let raw = first
        .to_str()
        .map_err(|_| ApiError::invalid("X-Subject-Id", "must be printable ASCII"))?;
    SubjectId::parse(raw).map_err(|m| ApiError::invalid("X-Subject-Id", m))
}

fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether a header of the caller's request (or of the upstream's answer) passes on.
/// The subject and decision headers never pass as sent: the gate sets them itself, so
/// that neither a second copy nor a `Connection` listing can change what the upstream
/// reads.
fn forwardable(name: &HeaderName, connection_listed: &HashSet<String>) -> bool {
    let name = name.as_str();
    !HOP_BY_HOP.contains(&name)
        && name != "authorization"
        && name != DECISION_HEADER
        && name != SUBJECT_HEADER
        && !connection_listed.contains(name)
}

/// Header names the `Connection` header declares hop-by-hop.
fn connection_listed(headers: &header::HeaderMap) -> HashSet<String> {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_ascii_lowercase())
        .collect()
}

fn fallback(upstream: &Upstream, reason: &str, basis: &str) -> Result<HttpResponse, ApiError> {
    match &upstream.fallback {
        Fallback::Static { status, body } => Ok(HttpResponse::build(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::OK),
        )
        .insert_header(("X-Consent-Reason", reason.to_owned()))
        .json(body)),
        Fallback::Problem => {
            let mut extensions = Map::new();
            extensions.insert("purpose".into(), Value::from(upstream.purpose.clone()));
            extensions.insert("reason".into(), Value::from(reason.to_owned()));
            extensions.insert("basis".into(), Value::from(basis.to_owned()));
            extensions.insert("upstream".into(), Value::from(upstream.name.clone()));
            Err(ApiError::Denied {
                detail: format!(
                    "`{}` is not allowed for this subject ({reason}).",
                    upstream.purpose
                ),
                extensions,
            })
        }
    }
}

/// Forwards to a personalization service when the gate allows its purpose.
///
/// The subject comes from `X-Subject-Id`. Allowed: the method, path, query, body and
/// headers (without hop-by-hop headers and `Authorization`) go to the upstream with
/// `X-Consent-Decision: <signed decision>`, and its answer streams back. Denied: the
/// upstream's fallback. Upstream unreachable: 502; too slow: 504.
#[utoipa::path(
    tag = "decisions",
    operation_id = "gate_proxy",
    params(
        ("upstream" = String, Path, description = "An upstream declared in `policies/gate.toml`"),
        ("path" = String, Path, description = "The path under the upstream's base URL"),
        ("X-Subject-Id" = String, Header, description = "The subject the call is about"),
        ("Sec-GPC" = Option<String>, Header, description = "`1`: a Global Privacy Control signal"),
    ),
    responses(
        (status = 200, description = "The upstream's answer, or a static fallback"),
        (status = 403, description = "Denied: the problem carries `reason`, `purpose`, `basis`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such upstream", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "A path that would leave the upstream's base", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the limit", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No or a bad `X-Subject-Id`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "The upstream cannot be reached", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The upstream did not answer in time", body = Problem, content_type = "application/problem+json"),
        AuthProblems,
    ),
    security(("bearer" = [])),
)]
#[route(
    "/gate/{upstream}/{path:.*}",
    method = "GET",
    method = "POST",
    method = "PUT",
    method = "PATCH",
    method = "DELETE",
    method = "HEAD",
    method = "OPTIONS"
)]
pub async fn gate_proxy(
    state: web::Data<AppState>,
    principal: Principal,
    client: web::Data<awc::Client>,
    limit: web::Data<BodyLimit>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    principal.require(&CALLERS)?;
    let name = req
        .match_info()
        .get("upstream")
        .unwrap_or_default()
        .to_owned();
    let upstream = state.policies.upstream(&name).ok_or_else(|| {
        ApiError::NotFound(format!("There is no upstream `{name}` in gate.toml."))
    })?;
    let tail = safe_tail(req.uri().path(), &name).map_err(ApiError::BadRequest)?;
    let subject = subject_header(&req)?;
    let purpose = state.policies.purpose(&upstream.purpose).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("gate upstream names an unknown purpose"))
    })?;

    let (now, gpc) = (state.clock.now(), request_gpc(&req));
    let snapshot = snapshot_for_request(&state, &principal, &req, &subject, gpc, now).await?;
    let request = DecisionRequest {
        purpose,
        channel: upstream.channel.as_ref(),
        data_categories: &upstream.data_categories,
        gpc,
        now,
    };
    let decision = decide_for(&state.policies, &snapshot, &request);
    observe(
        &state,
        Some(&subject),
        &purpose.key,
        upstream.channel.as_ref(),
        &decision,
        now,
    );
    if !decision.allowed {
        return fallback(upstream, decision.reason.as_str(), decision.basis.as_str());
    }
    let token = state
        .gate
        .sign(
            &state.keys,
            subject.as_str(),
            &purpose.key,
            purpose.version,
            &decision,
            &state.policies.revision,
            now,
        )
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing a decision: {e}")))?;

    // Bodies are read whole (bounded) so that the upstream gets a Content-Length.
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit.0 {
            return Err(ApiError::PayloadTooLarge { limit: limit.0 });
        }
        body.extend_from_slice(&chunk);
    }
    let mut target = format!("{}/{}", upstream.base_url, tail);
    if let Some(query) = req.uri().query() {
        target.push('?');
        target.push_str(query);
    }
    let listed = connection_listed(req.headers());
    let mut forward = client
        .request(req.method().clone(), target)
        .timeout(upstream.timeout);
    for (name, value) in req
        .headers()
        .iter()
        .filter(|(n, _)| forwardable(n, &listed))
    {
        forward = forward.append_header((name.clone(), value.clone()));
    }
    forward = forward
        .insert_header((SUBJECT_HEADER, subject.as_str()))
        .insert_header((DECISION_HEADER, token));
    let response = forward
        .send_body(body.freeze())
        .await
        .map_err(|err| match err {
            awc::error::SendRequestError::Timeout => ApiError::GatewayTimeout(format!(
                "`{name}` did not answer within {} ms.",
                upstream.timeout.as_millis()
            )),
            other => {
                tracing::warn!(upstream = %name, error = %other, "upstream unreachable");
                ApiError::BadGateway(format!("`{name}` could not be reached."))
            }
        })?;

    let listed = connection_listed(response.headers());
    let mut answer = HttpResponse::build(response.status());
    for (name, value) in response
        .headers()
        .iter()
        .filter(|(n, _)| forwardable(n, &listed))
    {
        answer.append_header((name.clone(), value.clone()));
    }
    answer.insert_header(("X-Consent-Reason", decision.reason.as_str()));
    Ok(answer.streaming(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_climb_out_of_the_base() {
        assert_eq!(
            safe_tail("/gate/recs/items/42", "recs").unwrap(),
            "items/42"
        );
        assert_eq!(safe_tail("/gate/recs/", "recs").unwrap(), "");
        assert_eq!(safe_tail("/gate/recs/a%20b/c", "recs").unwrap(), "a%20b/c");
        assert_eq!(safe_tail("/gate/recs/items/", "recs").unwrap(), "items/");
        assert_eq!(
            safe_tail("/gate/recs/v1.2/a..b", "recs").unwrap(),
            "v1.2/a..b"
        );
        for bad in [
            "/gate/recs/../admin",
            "/gate/recs/a/../../admin",
            "/gate/recs/%2e%2e/admin",
            "/gate/recs/%2E%2e/admin",
            "/gate/recs/a%2f..%2fadmin",
            "/gate/recs/a%5c..%5cadmin",
            "/gate/recs/./x",
            "/gate/recs/a%00b",
            "/gate/recs/%zz",
            "/gate/recs/..;/admin",
            "/gate/recs/a/..;/..;/admin",
            "/gate/recs/items;jsessionid=1/x",
            "/gate/recs//admin",
            "/gate/recs/a//b",
            "/gate/recs/%252e%252e/admin",
            "/gate/recs/%25252e/admin",
            "/gate/recs/a%3bb",
            "/gate/recs/a%0Ab",
        ] {
            assert!(safe_tail(bad, "recs").is_err(), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_and_credentials_are_not_forwarded() {
        let listed: HashSet<String> = ["x-private-hop".to_string()].into();
        for name in [
            "connection",
            "transfer-encoding",
            "authorization",
            "host",
            "x-private-hop",
            "x-consent-decision",
            "x-subject-id",
        ] {
            assert!(
                !forwardable(&HeaderName::from_static(name), &listed),
                "{name}"
            );
        }
        for name in ["accept", "content-type", "x-request-id"] {
            assert!(
                forwardable(&HeaderName::from_static(name), &listed),
                "{name}"
            );
        }
    }
}
