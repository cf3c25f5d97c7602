//! Kept photos for interactive work: `POST /api/photos` and `POST /api/suggest`.

use super::AppState;
use super::api::{ApiError, check_size, hints_of};
use super::cache::{CachedPhoto, PhotoCache};
use super::work::{cached, decode, infer_error, receive, run_job, working_of};
use crate::infer::ColorizeOptions;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use tokio::time::Instant;

/// `POST /api/photos`: decodes the body and keeps it for re-runs; answers `{"photo": ID, "width",
/// "height"}`.
pub(crate) async fn keep_photo(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + state.config.timeout;
    let (bytes, reservation) = receive(&state, &headers, body, deadline).await?;
    if bytes.is_empty() {
        return Err(ApiError::bad(
            "the request body is empty: send the photo's bytes as the body",
        ));
    }
    let id = state.cache.id_of(&bytes);
    if let Some(photo) = state.cache.get(&id) {
        return Ok(Json(photo_json(&photo)).into_response());
    }
    let state2 = state.clone();
    let photo = run_job(&state, deadline, move |_| {
        let (img, metadata) = decode(&bytes)?;
        drop((bytes, reservation));
        let photo = Arc::new(PhotoCache::new_photo(id, img, metadata, state2.config.preview_side));
        if !state2.cache.insert(photo.clone()) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the photo is larger than the server's photo cache: colorize it with a plain upload instead",
            ));
        }
        Ok(photo)
    })
    .await?;
    Ok(Json(photo_json(&photo)).into_response())
}

fn photo_json(photo: &CachedPhoto) -> serde_json::Value {
    serde_json::json!({
        "photo": photo.id,
        "width": photo.image.width(),
        "height": photo.image.height(),
        "animated": photo.metadata.animated,
    })
}

/// The query of `POST /api/suggest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestQuery {
    /// A kept photo's id.
    pub photo: String,
    /// Column in the photo's pixels.
    pub x: f64,
    /// Row in the photo's pixels.
    pub y: f64,
    /// Working size (default 256).
    pub size: Option<u32>,
    /// Hints already placed (JSON list).
    pub hints: Option<String>,
    /// How many colours (default 6, at most 20).
    pub count: Option<usize>,
}

/// `POST /api/suggest?photo=ID&x=&y=`: the colours the model suggests there, most likely first, as
/// `{"suggestions": [{"color": "#rrggbb", "ab": [a, b], "probability": p}, …]}`.
pub(crate) async fn suggest(
    State(state): State<Arc<AppState>>,
    query: Result<QueryParams<SuggestQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let deadline = Instant::now() + state.config.timeout;
    let QueryParams(query) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let size = check_size(query.size, state.config.max_size)?;
    let count = query.count.unwrap_or(6).clamp(1, 20);
    let hints = hints_of(&query.hints)?;
    let photo = cached(&state.cache, &query.photo)?;
    let state2 = state.clone();
    let suggestions = run_job(&state, deadline, move |_| {
        let options = ColorizeOptions {
            size,
            ..ColorizeOptions::default()
        };
        let c = &state2.colorizer;
        c.check_hints(&hints, photo.image.width(), photo.image.height())
            .map_err(infer_error)?;
        let working = working_of(&state2, &photo, &options)?;
        c.suggest_working(&photo.image, (&working.0, working.1), &hints, (query.x, query.y), count)
            .map_err(infer_error)
    })
    .await?;
    Ok(Json(serde_json::json!({ "suggestions": suggestions })).into_response())
}
