//! The page: HTML, CSS, script and icon, embedded in the binary (no build step, no CDN).

use super::AppState;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

/// Only this server's own files run or load; images may come from `blob:` URLs (the results); no
/// inline script or style, no framing, no form posts elsewhere.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");
const ICON: &str = include_str!("page/favicon.svg");

/// The routes of the page's files.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    let file = |mime: &'static str, body: &'static str| {
        move || async move { ([(header::CONTENT_TYPE, mime)], body).into_response() }
    };
    Router::new()
        .route("/", get(file("text/html; charset=utf-8", INDEX)))
        .route("/app.js", get(file("text/javascript; charset=utf-8", SCRIPT)))
        .route("/app.css", get(file("text/css; charset=utf-8", STYLE)))
        .route("/favicon.svg", get(file("image/svg+xml", ICON)))
}
