//! The HTTP API: `POST /api/colorize`, `POST /api/photos`, `POST /api/suggest`, `GET /api/models`,
//! `GET /healthz`, and JSON errors.

use super::AppState;
use super::work::{cached, decode, infer_error, receive, run_job, working_of};
use crate::error_chain as chain;
use crate::fsutil::{SaveOptions, encode_image};
use crate::hints::{Hint, parse_hints};
use crate::infer::{ColorizeOptions, InferError};
use crate::model::Architecture;
use crate::model::mleu::Head;
use crate::quantize::{Decoding, Gamut};
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query as QueryParams, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use image::DynamicImage;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::time::Instant;

/// The `Retry-After` of a 503, in seconds: about two photos' colorizing at the default working size
/// on a laptop CPU, after which a job or queue place is likely free again.
pub const RETRY_AFTER_S: u64 = 2;

/// The message of work stopped because its request was abandoned (its client left or its time ran out).
pub(crate) const ABANDONED: &str = "the request was abandoned";

/// The routes of the API.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/colorize", post(colorize))
        .route("/api/photos", post(super::photos::keep_photo))
        .route("/api/suggest", post(super::photos::suggest))
        .route("/api/models", get(models))
        .route("/healthz", get(healthz))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page or API route") })
}

/// The answer to a known route with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method (the API takes POST, /api/models and the page GET)",
    )
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
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: crate::one_line(&message.into()),
            retry_after: None,
        }
    }

    pub(crate) fn busy(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
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
    /// Working size, 32 up to the server's maximum (default 256).
    pub size: Option<u32>,
    /// Vividness, 0–2.
    pub vividness: Option<f32>,
    /// Share of the overall colour cast removed, 0–1 (default 0).
    pub cast_removal: Option<f32>,
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
    /// Colour hints, the JSON list of `colorize --hints` (URL-encoded).
    pub hints: Option<String>,
    /// The id of a photo sent to `/api/photos` (then the body is empty).
    pub photo: Option<String>,
    /// `true`: answer at most the server's preview side (fast, for interactive re-runs of a kept photo).
    pub preview: Option<bool>,
}

/// The working-size check shared by every route that runs the network.
pub(crate) fn check_size(size: Option<u32>, max: u32) -> Result<u32, ApiError> {
    let size = size.unwrap_or(crate::infer::DEFAULT_SIZE);
    if size < 32 {
        return Err(ApiError::bad(format!("size={size}: must be 32–{max}")));
    }
    if size > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("size={size}: this server's limit is {max} (rechroma serve --max-size)"),
        ));
    }
    Ok(size)
}

/// Hints of a query (400 when malformed).
pub(crate) fn hints_of(text: &Option<String>) -> Result<Vec<Hint>, ApiError> {
    match text {
        None => Ok(Vec::new()),
        Some(json) => parse_hints(json.as_bytes()).map_err(|e| ApiError::bad(format!("hints: {}", chain(&e)))),
    }
}

impl Query {
    /// The colorize options, or a 400 naming the parameter out of range (422 for a working size over the
    /// server's limit).
    fn options(&self, max_size: u32) -> Result<ColorizeOptions, ApiError> {
        let bad = |name: &str, value: String, rule: &str| ApiError::bad(format!("{name}={value}: {rule}"));
        let size = check_size(self.size, max_size)?;
        let max_vividness = crate::quantize::decode::MAX_VIVIDNESS;
        if let Some(v) = self.vividness.filter(|v| !(0.0..=max_vividness).contains(v)) {
            return Err(bad("vividness", v.to_string(), "must be 0–2"));
        }
        for (name, value) in [
            ("prior-correction", self.prior_correction),
            ("cast-removal", self.cast_removal),
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
            spread: Default::default(),
            cast_removal: self.cast_removal.unwrap_or(0.0),
        })
    }
}

/// `POST /api/colorize`: receives the photo (or takes a kept one), then waits for a job and colorizes on
/// a blocking thread, all within the request timeout.
async fn colorize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<QueryParams<Query>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + state.config.timeout;
    let QueryParams(query) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let options = query.options(state.config.max_size)?;
    let colorizer = state.colorizer.clone();
    if options.confidence && !colorizer.architecture().classifies() {
        return Err(ApiError::bad(
            "confidence needs a classification model; this one regresses ab (no colour distribution)",
        ));
    }
    let hints = hints_of(&query.hints)?;
    if !hints.is_empty() && !colorizer.takes_hints() {
        return Err(infer_error(InferError::NoHints(colorizer.architecture().name())));
    }
    let format = query.format.unwrap_or_default();
    let quality = query.quality.unwrap_or(crate::fsutil::JPEG_QUALITY);
    let preview = query.preview.unwrap_or(false);
    let source = match &query.photo {
        Some(id) => Err(cached(&state.cache, id)?),
        None => {
            let (bytes, reservation) = receive(&state, &headers, body, deadline).await?;
            if bytes.is_empty() {
                return Err(ApiError::bad(
                    "the request body is empty: send the photo's bytes as the body",
                ));
            }
            if preview {
                return Err(ApiError::bad(
                    "preview=true needs photo=ID (a photo kept by /api/photos)",
                ));
            }
            Ok((bytes, reservation))
        }
    };
    let state2 = state.clone();
    run_job(&state, deadline, move |stop| {
        let (photo, metadata, working, full) = match source {
            Ok((bytes, reservation)) => {
                let (img, metadata) = decode(&bytes)?;
                drop((bytes, reservation));
                if stop() {
                    return Err(infer_error(InferError::Stopped));
                }
                colorizer
                    .check_hints(&hints, img.width(), img.height())
                    .map_err(infer_error)?;
                let working = Arc::new(colorizer.working_l(&img, &options).map_err(infer_error)?);
                let full = (img.width(), img.height());
                (Arc::new(img), Arc::new(metadata), working, full)
            }
            Err(kept) => {
                colorizer
                    .check_hints(&hints, kept.image.width(), kept.image.height())
                    .map_err(infer_error)?;
                let working = working_of(&state2, &kept, &options)?;
                let image = if preview {
                    kept.preview.clone()
                } else {
                    kept.image.clone()
                };
                let full = (kept.image.width(), kept.image.height());
                (image, kept.metadata.clone(), working, full)
            }
        };
        let result = colorizer
            .colorize_working(&photo, full, (&working.0, working.1), &options, &hints, stop)
            .map_err(infer_error)?;
        drop(photo);
        if stop() {
            return Err(infer_error(InferError::Stopped));
        }
        let (image, format, save) = match result.confidence {
            Some(map) if options.confidence => (DynamicImage::ImageRgb8(map), Format::Png, SaveOptions::default()),
            _ => (
                result.image,
                format,
                SaveOptions {
                    metadata: Some(&metadata),
                    jpeg_quality: quality,
                },
            ),
        };
        encoded(&image, format, &save, full, metadata.animated)
    })
    .await
}

/// The encoded answer, with the photo's full size in headers.
fn encoded(
    image: &DynamicImage,
    format: Format,
    save: &SaveOptions,
    full: (u32, u32),
    animated: bool,
) -> Result<Response, ApiError> {
    let (image_format, mime) = match format {
        Format::Png => (image::ImageFormat::Png, "image/png"),
        Format::Jpeg => (image::ImageFormat::Jpeg, "image/jpeg"),
    };
    let bytes = encode_image(image, image_format, save).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the result: {}", chain(&e)),
        )
    })?;
    let mut response = Response::new(Body::from(bytes));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert("x-rechroma-width", HeaderValue::from(full.0));
    h.insert("x-rechroma-height", HeaderValue::from(full.1));
    if animated {
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
                "cast_removal": true,
                "temperature": distribution,
                "prior_correction": distribution,
                "confidence": arch.classifies(),
                "hints": c.takes_hints(),
                "suggestions": arch.classifies(),
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
            "size": [32, limits.max_size],
            "preview_side": limits.preview_side,
            "max_hints": crate::hints::MAX_HINTS,
        },
    }))
}

/// `GET /healthz`: 200 once the model is loaded, which is before the port opens.
async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let (photos, bytes) = state.cache.usage();
    Json(serde_json::json!({
        "status": "ok",
        "model": state.colorizer.source,
        "kept_photos": photos,
        "kept_bytes": bytes,
        // Jobs run to their end, and jobs stopped early because their request was abandoned.
        "jobs_finished": state.work[0].load(Ordering::Relaxed),
        "jobs_stopped": state.work[1].load(Ordering::Relaxed),
    }))
}
