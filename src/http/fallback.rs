//! What answers when no handler does: the refusal of a request head that was too long
//! or malformed, 405 with `Allow` for a method a known path does not take, 404 for a path
//! nobody serves.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{web, HttpRequest};

use super::problem::ApiError;

/// The methods each route pattern serves, read from the OpenAPI document so that it
/// cannot disagree with what is documented.
#[derive(Debug, Default)]
pub struct AllowedMethods(HashMap<String, String>);

impl AllowedMethods {
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> Self {
        let mut allowed = HashMap::new();
        for (path, item) in &document.paths.paths {
            let mut methods: Vec<&str> = Vec::new();
            let operations = [
                ("GET", item.get.is_some()),
                ("HEAD", item.head.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
                ("OPTIONS", item.options.is_some()),
            ];
            methods.extend(operations.iter().filter(|(_, has)| *has).map(|(m, _)| *m));
            allowed.insert(path.clone(), methods.join(", "));
        }
        Self(allowed)
    }

    /// The `Allow` value for a route pattern actix matched (`{name:regex}` as `{name}`).
    fn for_pattern(&self, pattern: &str) -> String {
        self.0
            .get(&documented_pattern(pattern))
            .cloned()
            .unwrap_or_else(|| "GET".into())
    }
}

/// `/gate/{upstream}/{path:.*}` → `/gate/{upstream}/{path}`, the OpenAPI spelling.
fn documented_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let (mut depth, mut in_regex) = (0usize, false);
    for c in pattern.chars() {
        match c {
            '{' => {
                depth += 1;
                if !in_regex {
                    out.push(c);
                }
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    in_regex = false;
                    out.push(c);
                } else if !in_regex {
                    out.push(c);
                }
            }
            ':' if depth == 1 => in_regex = true,
            _ if in_regex => {}
            _ => out.push(c),
        }
    }
    out
}

/// The app's default service; also answers for a request head refused before routing.
pub async fn no_such_route(
    req: HttpRequest,
    allowed: web::Data<Arc<AllowedMethods>>,
) -> Result<actix_web::HttpResponse, ApiError> {
    if let Some(refused) = super::head::RefusedHead::of(&req) {
        return Err(refused);
    }
    match req.resource_map().match_pattern(req.path()) {
        Some(pattern) => Err(ApiError::MethodNotAllowed {
            allow: allowed.for_pattern(&pattern),
        }),
        None => Err(ApiError::NotFound("There is no such endpoint.".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_segments_take_the_documented_spelling() {
        assert_eq!(
            documented_pattern("/gate/{upstream}/{path:.*}"),
            "/gate/{upstream}/{path}"
        );
        assert_eq!(documented_pattern("/docs/{_:.*}"), "/docs/{_}");
        assert_eq!(
            documented_pattern("/v1/subjects/{id}/consents/{purpose}"),
            "/v1/subjects/{id}/consents/{purpose}"
        );
        assert_eq!(documented_pattern("/healthz"), "/healthz");
        assert_eq!(documented_pattern(r"/x/{id:\d{2}}/y"), "/x/{id}/y");
    }
}
