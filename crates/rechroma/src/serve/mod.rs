//! `rechroma serve`: a local web page and HTTP API for colorizing photos (axum on tokio).
//!
//! # Routes
//! - `GET /` — the page (HTML, CSS and script embedded in the binary; no CDN, works offline);
//! - `POST /api/colorize` — the photo's bytes as the body, options as query parameters
//!   ([`api::Query`]) → the colorized photo at its full size, PNG unless `?format=jpeg`;
//! - `GET /api/models` — the model served, its decode defaults and the server's limits;
//! - `GET /healthz` — 200 once the model is loaded (it is loaded before the port opens).
//!
//! Errors are JSON, `{"error": "…"}`, with a 4xx status for the client's mistakes and 5xx for ours.
//!
//! # Limits
//! Memory is bounded whatever the clients send: at most [`ServeConfig::jobs`] photos are colorized at
//! once and at most [`ServeConfig::queue`] more wait (a request beyond that gets 503 with
//! `Retry-After` before its body is read); a body over [`ServeConfig::max_upload_bytes`] gets 413; a
//! header declaring more than [`crate::data::max_pixels`] pixels gets 422 before any pixel is
//! allocated. Uploads live in memory only, for the length of their request: nothing is written to disk,
//! and no request names a file.

pub mod api;
mod page;

use crate::infer::Colorizer;
use axum::Router;
use axum::http::{HeaderValue, header};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower_http::set_header::SetResponseHeaderLayer;

/// The largest photo `serve` decodes unless told otherwise (`--max-pixels`): 50 megapixels, more than
/// most cameras give, so one job holds at most about 1 GB.
pub const MAX_PIXELS: u64 = 50_000_000;

/// What the server allows and how much it does at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServeConfig {
    /// Photos colorized at once (default 2). Each holds one decoded photo and its result in memory;
    /// the network itself runs one photo at a time, so more jobs only overlap decoding and encoding.
    pub jobs: usize,
    /// Requests that may wait for a job (default 4); one more gets 503 with `Retry-After`.
    pub queue: usize,
    /// The largest request body accepted, in bytes (default 64 MiB); a larger one gets 413.
    pub max_upload_bytes: usize,
    /// How long one request may take, upload, wait and work together (default 120 s).
    pub timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            jobs: 2,
            queue: 4,
            max_upload_bytes: 64 << 20,
            timeout: Duration::from_secs(120),
        }
    }
}

/// Errors of starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address cannot be bound (in use, or not this machine's).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime or the connection loop failed.
    #[error("the server stopped")]
    Io(#[source] std::io::Error),
    /// A setting is out of range.
    #[error("invalid server setting: {0}")]
    Config(String),
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) colorizer: Arc<Colorizer>,
    pub(crate) config: ServeConfig,
    /// Permits for requests in the building: jobs + queue.
    pub(crate) admitted: Arc<Semaphore>,
    /// Permits for colorizing: jobs.
    pub(crate) workers: Arc<Semaphore>,
}

/// The application: page, API and security headers, for `colorizer` under `config`.
pub fn router(colorizer: Arc<Colorizer>, config: ServeConfig) -> Result<Router, ServeError> {
    if config.jobs == 0 {
        return Err(ServeError::Config("jobs must be at least 1".into()));
    }
    if config.max_upload_bytes == 0 {
        return Err(ServeError::Config("the upload limit must be above 0".into()));
    }
    let state = Arc::new(AppState {
        colorizer,
        config,
        admitted: Arc::new(Semaphore::new(config.jobs + config.queue)),
        workers: Arc::new(Semaphore::new(config.jobs)),
    });
    let static_header =
        |name, value: &'static str| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    Ok(api::routes()
        .merge(page::routes())
        .with_state(state)
        .layer(static_header(
            header::CONTENT_SECURITY_POLICY,
            page::CONTENT_SECURITY_POLICY,
        ))
        .layer(static_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(static_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(static_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(static_header(header::CACHE_CONTROL, "no-store")))
}

/// Serves `app` on `listener` until the process stops.
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> Result<(), ServeError> {
    axum::serve(listener, app).await.map_err(ServeError::Io)
}

/// Binds `addr`, calls `ready` with the address bound (port 0 picks a free one), and serves until the
/// process stops, on a runtime of its own: the blocking entry point of `rechroma serve`.
pub fn run(
    colorizer: Colorizer,
    config: ServeConfig,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let app = router(Arc::new(colorizer), config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.jobs + 1)
        .build()
        .map_err(ServeError::Io)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let bound = listener.local_addr().map_err(ServeError::Io)?;
        ready(bound);
        serve(listener, app).await
    })
}
