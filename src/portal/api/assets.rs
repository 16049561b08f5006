//! The one stylesheet every page uses, compiled into the binary (nothing is fetched).

use actix_web::{get, HttpResponse};

const STYLESHEET: &str = include_str!("../static/portal.css");

#[get("/portal/static/portal.css")]
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(STYLESHEET)
}
