//! `GET /.well-known/jwks.json`.

use actix_web::{get, web, HttpResponse};

use super::keys::JwkSet;
use super::Authenticator;

/// The public keys that sign tokens, decisions, receipts and audit checkpoints.
#[utoipa::path(
    tag = "keys",
    responses((status = 200, description = "The JSON Web Key Set", body = JwkSet)),
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(auth: web::Data<Authenticator>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(auth.keys.jwks())
}
