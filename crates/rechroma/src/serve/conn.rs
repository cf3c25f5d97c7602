//! The connection loop: hyper's HTTP/1 server under axum's router, with a cap on open connections, a
//! timeout for request headers (which also ends idle keep-alive connections), and each request told the
//! address it came in on (for the same-origin checks of [`super::guard`]).
//!
//! Hand-written rather than `axum::serve`, which sets neither a header timeout nor a connection cap
//! (200 slowloris connections were kept open forever, 1100 exhausted the open-file limit).

use super::{ServeConfig, ServeError};
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The addresses of a request's connection, as a request extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    /// The server's address this connection came in on.
    pub(crate) local: SocketAddr,
}

/// Serves `app` on `listener` until the process stops, within `config`'s connection limits. Errors of
/// one connection (a client that resets it, a write to a closed socket, a header timeout) are logged at
/// debug level and end that connection only.
pub async fn serve(listener: tokio::net::TcpListener, app: Router, config: &ServeConfig) -> Result<(), ServeError> {
    let fallback_local = listener.local_addr().map_err(ServeError::Io)?;
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .keep_alive(true)
        // Request heads (line and headers) above 64 KiB get 431 from hyper.
        .max_buf_size(64 << 10);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors or a connection reset before accept: wait a moment, go on.
                tracing::debug!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the cap: closed at once, before a byte is read (cheap for us, clear for the client).
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("connection from {peer} refused: {} open", config.max_connections);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let info = ConnInfo {
            local: stream.local_addr().unwrap_or(fallback_local),
        };
        let app = app.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(info);
                app.clone().oneshot(request.map(Body::new))
            });
            if let Err(e) = http.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(slot);
        });
    }
}
