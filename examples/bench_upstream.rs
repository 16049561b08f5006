//! A minimal personalization upstream for measuring what the proxy gate adds:
//! answers every request with a small JSON body. `PORT` (default 9100).

use actix_web::{web, App, HttpResponse, HttpServer};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9100);
    HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(r#"{"items":[101,102,103],"personalized":true}"#)
        }))
    })
    .workers(1)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
