//! The HTTP API: `POST /api/colorize`, `GET /api/models`, `GET /healthz`, and JSON errors.

use super::AppState;
use crate::data::decode_image;
use crate::error_chain as chain;
use crate::fsutil::{SaveOptions, encode_image};
use crate::infer::{ColorizeOptions, Colorizer, InferError};
use crate::model::Architecture;
use crate::model::mleu::Head;
use crate::quantize::{Decoding, Gamut};
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query as QueryParams, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use tokio::time::{Instant, timeout_at};

/// The `Retry-After` of a 503, in seconds: about two photos' colorizing at the default working size
/// on a laptop CPU, after which a job or queue place is likely free again.
pub const RETRY_AFTER_S: u64 = 2;

/// The routes of the API.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/colorize", post(colorize))
        .route("/api/models", get(models))
        .route("/healthz", get(healthz))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page or API route") })
}

/// An error answered as JSON `{"error": message}`, with `Retry-After` when the server is busy.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// One line for the user.
    pub message: String,
    /// Seconds after which a retry may succeed (503 only).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn busy(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(serde_json::json!({ "error": self.message }))).into_response();
        if let Some(s) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

/// The output format of `POST /api/colorize`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Lossless; keeps 16 bits and alpha.
    #[default]
    Png,
    /// Smaller; 8 bits, no alpha.
    #[serde(alias = "jpg")]
    Jpeg,
}

/// The query parameters of `POST /api/colorize`, named like `colorize`'s flags; each left out takes
/// the model's own setting. Unknown parameters are refused (400), so a misspelt one is never ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Query {
    /// Working size, 32–2048 (default 256).
    pub size: Option<u32>,
    /// Vividness, 0–1.
    pub vividness: Option<f32>,
    /// Prior correction β, 0–1 (classification models).
    pub prior_correction: Option<f32>,
    /// Annealed-mean temperature, above 0 (classification models).
    pub temperature: Option<f32>,
    /// `clip` or `fit`.
    pub gamut: Option<Gamut>,
    /// `png` (default) or `jpeg`.
    pub format: Option<Format>,
    /// JPEG quality, 1–100.
    pub quality: Option<u8>,
    /// `true`: answer the confidence map (PNG) instead of the colorized photo.
    pub confidence: Option<bool>,
}

impl Query {
    /// The colorize options, or a 400 naming the parameter out of range.
    fn options(&self) -> Result<ColorizeOptions, ApiError> {
        let bad = |name: &str, value: String, rule: &str| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("{name}={value}: {rule}"))
        };
        let size = self.size.unwrap_or(crate::infer::DEFAULT_SIZE);
        if !(32..=2048).contains(&size) {
            return Err(bad("size", size.to_string(), "must be 32–2048"));
        }
        for (name, value) in [
            ("vividness", self.vividness),
            ("prior-correction", self.prior_correction),
        ] {
            if let Some(v) = value.filter(|v| !(0.0..=1.0).contains(v)) {
                return Err(bad(name, v.to_string(), "must be 0–1"));
            }
        }
        if let Some(t) = self.temperature.filter(|t| !(t.is_finite() && *t > 0.0)) {
            return Err(bad("temperature", t.to_string(), "must be above 0"));
        }
        if let Some(q) = self.quality.filter(|q| !(1..=100).contains(q)) {
            return Err(bad("quality", q.to_string(), "must be 1–100"));
        }
        Ok(ColorizeOptions {
            size,
            decoding: self
                .temperature
                .map(|temperature| Decoding::AnnealedMean { temperature }),
            prior_correction: self.prior_correction,
            vividness: self.vividness,
            gamut: self.gamut,
            confidence: self.confidence.unwrap_or(false),
        })
    }
}

/// `POST /api/colorize`: admits the request (or 503), reads the body within the limit (or 413), waits
/// for a job and colorizes on a blocking thread, all within the request timeout.
async fn colorize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<QueryParams<Query>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + state.config.timeout;
    let QueryParams(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let options = query.options()?;
    if options.confidence && !state.colorizer.architecture().classifies() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "confidence needs a classification model; this one regresses ab (no colour distribution)",
        ));
    }
    let limit = state.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let retry = RETRY_AFTER_S;
    // Admission before the body is read: waiting requests hold at most `queue` bodies.
    let Ok(admitted) = state.admitted.clone().try_acquire_owned() else {
        return Err(ApiError::busy(
            "the server is busy (every job and queue place is taken); retry shortly",
            retry,
        ));
    };
    let bytes = timeout_at(deadline, read_body(body, limit, declared))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the upload took longer than the time limit",
            )
        })??;
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the request body is empty: send the photo's bytes as the body",
        ));
    }
    let worker = timeout_at(deadline, state.workers.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::busy("timed out waiting for a free job; retry shortly", retry))?
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"))?;
    let colorizer = state.colorizer.clone();
    let format = query.format.unwrap_or_default();
    let quality = query.quality.unwrap_or(crate::fsutil::JPEG_QUALITY);
    // The permits travel with the work: if the client goes away or the deadline passes, the job still
    // counts until it ends, so the bound on memory holds.
    let work = tokio::task::spawn_blocking(move || {
        let result = work(&colorizer, bytes, &options, format, quality);
        drop((worker, admitted));
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

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the upload is larger than the limit of {} MB",
            limit as f64 / (1 << 20) as f64
        ),
    )
}

/// Reads the body into memory, refusing (413) as soon as it passes `limit` bytes.
async fn read_body(mut body: Body, limit: usize, declared: Option<u64>) -> Result<Bytes, ApiError> {
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the upload broke off: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.into())
}

/// Decodes, colorizes and encodes one upload (on a blocking thread).
fn work(
    colorizer: &Colorizer,
    bytes: Bytes,
    options: &ColorizeOptions,
    format: Format,
    quality: u8,
) -> Result<Response, ApiError> {
    let (img, metadata) = decode_image(&bytes, Path::new("the upload"))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, chain(&e)))?;
    drop(bytes);
    let (width, height) = (img.width(), img.height());
    let result = colorizer.colorize(&img, options).map_err(|e| match e {
        InferError::NoPrior | InferError::WorkingSize(_) => ApiError::new(StatusCode::BAD_REQUEST, chain(&e)),
        other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, chain(&other)),
    })?;
    drop(img);
    let (image, format, save) = match result.confidence {
        Some(map) if options.confidence => (image::DynamicImage::ImageRgb8(map), Format::Png, SaveOptions::default()),
        _ => (
            result.image,
            format,
            SaveOptions {
                metadata: Some(&metadata),
                jpeg_quality: quality,
            },
        ),
    };
    let (image_format, mime) = match format {
        Format::Png => (image::ImageFormat::Png, "image/png"),
        Format::Jpeg => (image::ImageFormat::Jpeg, "image/jpeg"),
    };
    let encoded = encode_image(&image, image_format, &save).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the result: {}", chain(&e)),
        )
    })?;
    let mut response = Response::new(Body::from(encoded));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert("x-rechroma-width", HeaderValue::from(width));
    h.insert("x-rechroma-height", HeaderValue::from(height));
    if metadata.animated {
        h.insert(
            "x-rechroma-note",
            HeaderValue::from_static(
                "the file holds several images (an animation or pages): only the first is colorized",
            ),
        );
    }
    Ok(response)
}

/// `GET /api/models`: the model served and the server's limits.
async fn models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let c = &state.colorizer;
    let arch = c.architecture();
    let decode = c.decode_config();
    let distribution = matches!(arch, Architecture::Mleu(Head::Classification));
    let limits = &state.config;
    Json(serde_json::json!({
        "models": [{
            "name": c.source,
            "architecture": arch.name(),
            // Which controls change this model's output.
            "controls": {
                "size": true,
                "vividness": true,
                "temperature": distribution,
                "prior_correction": distribution,
                "confidence": arch.classifies(),
            },
            "decode": decode,
            "size": crate::infer::DEFAULT_SIZE,
        }],
        "limits": {
            "max_upload_bytes": limits.max_upload_bytes,
            "max_pixels": crate::data::max_pixels(),
            "jobs": limits.jobs,
            "queue": limits.queue,
            "timeout_s": limits.timeout.as_secs(),
            "size": [32, 2048],
        },
    }))
}

/// `GET /healthz`: 200 once the model is loaded, which is before the port opens.
async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "model": state.colorizer.source }))
}
