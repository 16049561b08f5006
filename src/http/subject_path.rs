//! The opening every endpoint about one subject shares: who is calling, which subject the
//! path names (422 naming `id` if it is not an id), and whether the caller may reach that
//! subject.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::IntoParams;

use super::ApiError;
use crate::auth::{Principal, Role, SubjectAccess};
use crate::consent::SubjectId;
use crate::identifier;

/// The OpenAPI schema of a subject id, as `SubjectId::parse` takes it.
pub fn subject_id_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(identifier::MAX_CHARS))
        .pattern(Some(ID_PATTERN))
        .description(Some(ID_DESCRIPTION))
        .build()
}

/// The same, or null (a body that may name the subject another way).
pub fn optional_subject_id_schema() -> Object {
    use utoipa::openapi::schema::SchemaType;
    let mut schema = subject_id_schema();
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    schema
}

const ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._:@+=|~-]{0,127}$";
const ID_DESCRIPTION: &str = "The subject's opaque id: 1–128 ASCII letters, digits and `-_.:@+=|~`, starting with a letter or digit.";

/// The subject a path names, for the OpenAPI document (`{id}`); a malformed id is 422.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
pub struct SubjectPath(
    /// The subject's opaque id: 1–128 ASCII letters, digits and `-_.:@+=|~`, starting with a letter or digit.
    #[param(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9][A-Za-z0-9._:@+=|~-]{0,127}$"
    )]
    String,
);

/// A subject id from the path, or 422 naming it.
fn path_subject_id(raw: &str) -> Result<SubjectId, ApiError> {
    SubjectId::parse(raw).map_err(|m| ApiError::invalid("id", m))
}

/// The caller and the subject `{id}` of the path: authenticated first (401), then the id
/// checked (422).
pub struct SubjectCaller {
    pub id: SubjectId,
    pub principal: Principal,
}

impl SubjectCaller {
    /// 403 for a role not in `roles` (and not the subject themself when `subject_may`);
    /// `Hidden` for a customer asking about someone else, which the handler answers with
    /// the same 404, after the same lookup, as for a subject that does not exist.
    pub fn access(&self, roles: &[Role], subject_may: bool) -> Result<SubjectAccess, ApiError> {
        let access = self
            .principal
            .subject_access(roles, subject_may, self.id.as_str());
        access.check_role()?;
        Ok(access)
    }
}

impl FromRequest for SubjectCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = match Principal::from_request(req, payload).into_inner() {
            Ok(principal) => principal,
            Err(err) => return ready(Err(err)),
        };
        // The router leaves `%`, `/` and `+` encoded (`%2B`); an id may hold `+`.
        let raw = req.match_info().get("id").unwrap_or_default();
        let id = super::printable::percent_decode(raw, false);
        ready(path_subject_id(&id).map(|id| SubjectCaller { id, principal }))
    }
}
