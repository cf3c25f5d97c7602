//! `rechroma serve`: a local web page and HTTP API for colorizing photos (axum on tokio and hyper).
//!
//! # Routes
//! - `GET /` — the page (HTML, CSS and script embedded in the binary; no CDN, works offline);
//! - `POST /api/colorize` — the photo's bytes as the body (or `?photo=ID` of a photo sent to
//!   `/api/photos`), options and colour hints as query parameters ([`api::Query`]) → the colorized photo
//!   at its full size (or `?preview=true`: at most [`ServeConfig::preview_side`] pixels a side, for
//!   interactive re-runs), PNG unless `?format=jpeg`;
//! - `POST /api/photos` — keeps a photo, decoded, in a bounded in-memory cache for re-runs with other
//!   hints and settings; answers its id and size;
//! - `POST /api/suggest` — the colours the model suggests at a point (`?photo=ID&x=&y=`);
//! - `GET /api/models` — the model served, its decode defaults and the server's limits;
//! - `GET /healthz` — 200 once the model is loaded (it is loaded before the port opens).
//!
//! Every answer, an error included, is JSON `{"error": "…"}` with a 4xx status for the client's mistakes
//! and 5xx for ours, and carries the security headers (CSP, nosniff, no framing, no referrer, no store).
//!
//! # Threat model
//! Who can reach the server: by default, programs on this computer only (loopback). That includes every
//! web page the user's browser shows, so the server answers only requests whose `Host` names it by its
//! own address (no DNS rebinding: 421), refuses work started from another origin (`Origin` not its own:
//! 403) and sends no CORS headers, so a page elsewhere can neither use it nor read its answers. Bound
//! beyond loopback, every API call needs the access token printed at start-up (unless `--no-token`).
//! What a client can make it do: colorize photos within the limits below. What it never does: write a
//! file, read a path a request names, keep an upload beyond its request (or the bounded photo cache).
//!
//! # Limits
//! Memory and work are bounded whatever the clients send ([`ServeConfig`]):
//! - connections: at most `max_connections`; one more is closed at once; request headers must arrive
//!   within `header_timeout`, which also closes idle keep-alive connections;
//! - uploads: bodies in flight together reserve at most `upload_budget_bytes` (the declared length, or
//!   the upload limit for a chunked body; none over `max_upload_bytes`: 413); a body that stalls for
//!   `upload_idle` or, after that, arrives slower than `min_upload_rate` is dropped (408). A body is
//!   read *before* a job place is taken, so idle uploads cannot lock others out of the model;
//! - work: at most `jobs` photos colorized at once and `queue` more waiting (503 with `Retry-After`);
//!   working sizes up to `max_size` (422 above); a request that times out or whose client leaves stops
//!   its work at the next stage (decode, forward, recombine, encode);
//! - a photo's header declaring more than [`crate::data::max_pixels`] pixels gets 422 before any pixel
//!   is allocated.

pub mod api;
mod cache;
mod conn;
mod guard;
mod page;
mod photos;
mod work;

pub use conn::serve;

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
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Photos colorized at once (default 2). Each holds one decoded photo and its result in memory;
    /// the network itself runs one photo at a time, so more jobs only overlap decoding and encoding.
    pub jobs: usize,
    /// Requests that may wait for a job (default 4); one more gets 503 with `Retry-After`.
    pub queue: usize,
    /// The largest request body accepted, in bytes (default 64 MiB); a larger one gets 413.
    pub max_upload_bytes: usize,
    /// All request bodies in flight together, in bytes (default 256 MiB): each reserves its declared
    /// length (a chunked one the upload limit) while it is received and until it is decoded.
    pub upload_budget_bytes: usize,
    /// A body that sends nothing for this long is dropped with 408 (default 10 s).
    pub upload_idle: Duration,
    /// After `upload_idle`, a body arriving slower than this many bytes a second on average is dropped
    /// with 408 (default 16 KiB/s: a 10 MB photo over a slow link still gets 10 minutes).
    pub min_upload_rate: u64,
    /// How long one request may take, upload, wait and work together (default 120 s).
    pub timeout: Duration,
    /// The largest working size a request may ask for (default 1024; 422 above). Work and memory grow
    /// with its square: see the README for the peak at this size.
    pub max_size: u32,
    /// Request headers must arrive within this (default 10 s); it also closes idle keep-alive
    /// connections.
    pub header_timeout: Duration,
    /// Connections open at once (default 256, well under the usual 1024 open files); one more is
    /// closed at once.
    pub max_connections: usize,
    /// Photos kept decoded for interactive re-runs (`/api/photos`), in bytes (default 512 MiB); the
    /// least recently used go first.
    pub cache_bytes: usize,
    /// The longest side of a preview (`?preview=true`), in pixels (default 1280).
    pub preview_side: u32,
    /// The access token every `/api/` call must carry (`Authorization: Bearer TOKEN`); `None` asks for
    /// none (the default on loopback, where the same-origin checks apply).
    pub token: Option<String>,
    /// Host names besides the bound address that requests may name (`Host`), e.g. this machine's name
    /// on the LAN; the port is the bound one.
    pub allowed_hosts: Vec<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            jobs: 2,
            queue: 4,
            max_upload_bytes: 64 << 20,
            upload_budget_bytes: 256 << 20,
            upload_idle: Duration::from_secs(10),
            min_upload_rate: 16 << 10,
            timeout: Duration::from_secs(120),
            max_size: 1024,
            header_timeout: Duration::from_secs(10),
            max_connections: 256,
            cache_bytes: 512 << 20,
            preview_side: 1280,
            token: None,
            allowed_hosts: Vec::new(),
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
    /// Permits for requests waiting for or doing work: jobs + queue.
    pub(crate) admitted: Arc<Semaphore>,
    /// Permits for colorizing: jobs.
    pub(crate) workers: Arc<Semaphore>,
    /// The upload budget, in KiB.
    pub(crate) uploads: Arc<Semaphore>,
    /// Decoded photos for re-runs.
    pub(crate) cache: cache::PhotoCache,
    /// Jobs finished and jobs stopped because their request was abandoned (reported by `/healthz`).
    pub(crate) work: Arc<[std::sync::atomic::AtomicU64; 2]>,
}

/// The application: page, API, same-origin checks and security headers, for `colorizer` under
/// `config`. Serve it with [`serve`], which tells each request the address it came in on (the checks
/// refuse requests without it).
pub fn router(colorizer: Arc<Colorizer>, config: ServeConfig) -> Result<Router, ServeError> {
    if config.jobs == 0 {
        return Err(ServeError::Config("jobs must be at least 1".into()));
    }
    if config.max_upload_bytes == 0 || config.upload_budget_bytes < config.max_upload_bytes {
        return Err(ServeError::Config(
            "the upload limit must be above 0 and within the upload budget".into(),
        ));
    }
    if config.token.as_ref().is_some_and(|t| t.len() < 16) {
        return Err(ServeError::Config(
            "an access token needs at least 16 characters".into(),
        ));
    }
    let kib = |bytes: usize| bytes.div_ceil(1024).min(Semaphore::MAX_PERMITS);
    let state = Arc::new(AppState {
        colorizer,
        admitted: Arc::new(Semaphore::new(config.jobs + config.queue)),
        workers: Arc::new(Semaphore::new(config.jobs)),
        uploads: Arc::new(Semaphore::new(kib(config.upload_budget_bytes))),
        cache: cache::PhotoCache::new(config.cache_bytes),
        work: Arc::new(Default::default()),
        config,
    });
    let static_header =
        |name, value: &'static str| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    Ok(api::routes()
        .merge(page::routes())
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::same_origin))
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

/// A fresh access token: 32 hex digits from the operating system's randomness (via rand's thread
/// generator, a CSPRNG seeded from the OS).
pub fn new_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// Binds `addr`, calls `ready` with the address bound (port 0 picks a free one), and serves until the
/// process stops, on a runtime of its own: the blocking entry point of `rechroma serve`. A client that
/// goes away mid-answer costs nothing but its connection (the process must not die on SIGPIPE, which
/// Rust ignores by default: a caller that restored it must ignore it again).
pub fn run(
    colorizer: Colorizer,
    config: ServeConfig,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let app = router(Arc::new(colorizer), config.clone())?;
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
        serve(listener, app, &config).await
    })
}
