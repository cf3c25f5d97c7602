//! Receiving request bodies within the upload budget, and running jobs: a queue place, a job place, a
//! blocking thread, and a stop flag set when the request is abandoned.

use super::AppState;
use super::api::{ABANDONED, ApiError, RETRY_AFTER_S};
use super::cache::{CachedPhoto, PhotoCache};
use crate::data::decode_image;
use crate::error_chain as chain;
use crate::fsutil::Metadata;
use crate::infer::{ColorizeOptions, InferError};
use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, StatusCode, header};
use image::DynamicImage;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout, timeout_at};

pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the upload is larger than the limit of {} MB",
            limit as f64 / (1 << 20) as f64
        ),
    )
}

/// Receives a request body within the limits: its declared length over the upload limit is 413 at
/// once; it reserves its share of the upload budget (503 when the budget is spent); it must keep
/// arriving (408 after `upload_idle` without a byte, or below `min_upload_rate` after that) and end
/// before `deadline`. Returns the bytes and the reservation, to hold until they are decoded.
pub(crate) async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    mut body: Body,
    deadline: Instant,
) -> Result<(Bytes, OwnedSemaphorePermit), ApiError> {
    let config = &state.config;
    let limit = config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let reserve = declared.map_or(limit, |n| n as usize).div_ceil(1024).max(1) as u32;
    let Ok(reservation) = state.uploads.clone().try_acquire_many_owned(reserve) else {
        return Err(ApiError::busy(
            "too many uploads are in progress; retry shortly",
            RETRY_AFTER_S,
        ));
    };
    let started = Instant::now();
    let timed_out = |what: &str| ApiError::new(StatusCode::REQUEST_TIMEOUT, format!("the upload {what}"));
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    loop {
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        let frame = match timeout(config.upload_idle, timeout_at(deadline, next)).await {
            Err(_) => {
                return Err(timed_out(&format!(
                    "stalled (nothing for {} s)",
                    config.upload_idle.as_secs()
                )));
            }
            Ok(Err(_)) => return Err(timed_out("took longer than the time limit")),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(frame))) => frame.map_err(|e| ApiError::bad(format!("the upload broke off: {e}")))?,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
        let elapsed = started.elapsed();
        if elapsed > config.upload_idle && (buf.len() as f64) < config.min_upload_rate as f64 * elapsed.as_secs_f64() {
            return Err(timed_out(&format!(
                "is too slow (under {} KB/s)",
                config.min_upload_rate / 1024
            )));
        }
    }
    Ok((buf.into(), reservation))
}

/// Sets its flag when dropped: the request's future is dropped when its client goes away or its time
/// is up, and the work then stops at its next stage.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Takes a queue place (503 when none is free), waits for a job until `deadline`, and runs `job` on a
/// blocking thread; the job is told to stop (at its next stage) if the request is abandoned.
pub(crate) async fn run_job<T: Send + 'static>(
    state: &AppState,
    deadline: Instant,
    job: impl FnOnce(&dyn Fn() -> bool) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let retry = RETRY_AFTER_S;
    let Ok(admitted) = state.admitted.clone().try_acquire_owned() else {
        return Err(ApiError::busy(
            "the server is busy (every job and queue place is taken); retry shortly",
            retry,
        ));
    };
    let worker = timeout_at(deadline, state.workers.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::busy("timed out waiting for a free job; retry shortly", retry))?
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(stop.clone());
    // The permits travel with the work: it counts until it ends, so the bound on memory holds.
    let counters = state.work.clone();
    let work = tokio::task::spawn_blocking(move || {
        let result = job(&|| stop.load(Ordering::Relaxed));
        drop((worker, admitted));
        let stopped = matches!(&result, Err(e) if e.message == ABANDONED);
        counters[usize::from(stopped)].fetch_add(1, Ordering::Relaxed);
        result
    });
    match timeout_at(deadline, work).await {
        Err(_) => Err(ApiError::busy("colorizing took longer than the time limit", retry)),
        Ok(Err(join)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("colorizing failed: {join}"),
        )),
        Ok(Ok(result)) => result,
    }
}

pub(crate) fn infer_error(e: InferError) -> ApiError {
    match e {
        InferError::NoPrior | InferError::WorkingSize(_) | InferError::NoHints(_) | InferError::NoSuggestions(_) => {
            ApiError::bad(chain(&e))
        }
        InferError::Hint(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, chain(&e)),
        InferError::Stopped => ApiError::busy(ABANDONED, RETRY_AFTER_S),
        other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, chain(&other)),
    }
}

pub(crate) fn decode(bytes: &[u8]) -> Result<(DynamicImage, Metadata), ApiError> {
    decode_image(bytes, Path::new("the upload")).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, chain(&e)))
}

pub(crate) fn cached(cache: &PhotoCache, id: &str) -> Result<Arc<CachedPhoto>, ApiError> {
    cache.get(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("photo {id:?} is not kept (any more): send it again to /api/photos"),
        )
    })
}

/// The working L of a kept photo at `options`' size, computed once per size.
pub(crate) fn working_of(
    state: &AppState,
    photo: &CachedPhoto,
    options: &ColorizeOptions,
) -> Result<Arc<(Vec<f32>, (usize, usize))>, ApiError> {
    if let Some(w) = photo
        .working
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&options.size)
    {
        return Ok(w.clone());
    }
    let w = Arc::new(state.colorizer.working_l(&photo.image, options).map_err(infer_error)?);
    photo
        .working
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(options.size, w.clone());
    state.cache.shrink();
    Ok(w)
}
