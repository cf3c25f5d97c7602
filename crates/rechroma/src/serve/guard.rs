//! Same-origin checks, before any handler runs:
//! - `Host` must name the server by the address it was reached on (with its port), or, on loopback,
//!   `localhost`, `127.0.0.1` or `[::1]` (or a name of [`ServeConfig::allowed_hosts`]): anything else is
//!   the mark of DNS rebinding (a hostile name re-pointed at this machine) and gets 421;
//! - a request that is not a plain read (not GET/HEAD) and carries an `Origin` other than the server's
//!   own gets 403, so a page elsewhere cannot start work (browsers send `Origin` on every cross-origin
//!   POST, `text/plain` "simple" requests included);
//! - with an access token, every `/api/` call must carry it (`Authorization: Bearer TOKEN`): 401.
//!
//! No CORS headers are ever sent, so a page elsewhere cannot read an answer either.

use super::api::ApiError;
use super::conn::ConnInfo;
use super::{AppState, ServeConfig};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The `host:port` values a request may name for a server reached at `local`.
pub(crate) fn allowed_hosts(local: SocketAddr, config: &ServeConfig) -> Vec<String> {
    let port = local.port();
    let mut hosts = vec![match local {
        SocketAddr::V4(a) => format!("{}:{port}", a.ip()),
        SocketAddr::V6(a) => format!("[{}]:{port}", a.ip()),
    }];
    if local.ip().is_loopback() {
        hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(|h| format!("{h}:{port}")));
    }
    hosts.extend(
        config
            .allowed_hosts
            .iter()
            .map(|h| format!("{}:{port}", h.to_ascii_lowercase())),
    );
    hosts
}

/// The Host header, lower-cased, with the default port 80 made explicit.
fn host_of(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?.trim().to_ascii_lowercase();
    let has_port = match host.rsplit_once(':') {
        Some((_, port)) => !port.contains(']'),
        None => false,
    };
    Some(if has_port { host } else { format!("{host}:80") })
}

/// Compares two strings in time independent of where they differ (for the token).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware (see the module docs).
pub(crate) async fn same_origin(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match check(&state.config, &request) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

fn check(config: &ServeConfig, request: &Request) -> Result<(), ApiError> {
    let Some(info) = request.extensions().get::<ConnInfo>() else {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "request without its connection's address (serve the router with rechroma::serve::serve)",
        ));
    };
    let allowed = allowed_hosts(info.local, config);
    let headers = request.headers();
    let host = host_of(headers);
    if !host.as_ref().is_some_and(|h| allowed.contains(h)) {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server answers only to its own address ({}), not to Host {}",
                allowed[0],
                host.map_or("(none)".into(), |h| format!("{h:?}"))
            ),
        ));
    }
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if !reads && let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
        let own = allowed
            .iter()
            .any(|h| origin == format!("http://{h}") || format!("{origin}:80") == format!("http://{h}"));
        if !own {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("requests from other sites are refused (Origin {origin:?})"),
            ));
        }
    }
    if let Some(token) = &config.token
        && request.uri().path().starts_with("/api/")
    {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given.trim().as_bytes(), token.as_bytes()) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this server needs its access token: open the address it printed at start-up (…/?token=…), or send Authorization: Bearer TOKEN",
            ));
        }
    }
    Ok(())
}
