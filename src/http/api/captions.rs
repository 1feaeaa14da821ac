//! A video's captions under `/api/v1/videos/<id>/captions`: `GET` lists the languages (to
//! whoever may see the video); `PUT …/captions/<lang>` (admin token) stores a WebVTT or SubRip
//! body, checked and normalized by [`rill_vod::captions`] (`?label=` names it; hostile input
//! is a 400 with the reason); `DELETE …/captions/<lang>` (admin token) removes it. The file
//! goes to the video's storage (`<id>/captions/<lang>.vtt`, deleted with the video) before the
//! catalog lists it; players get it from `/vod/<id>/captions/<lang>.vtt` through the HLS
//! `SUBTITLES` group and the DASH text adaptation sets.

use super::videos::visible_video;
use crate::http::auth::refuse_non_admin;
use crate::http::response::{json_error as error, origin};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use rill_vod::captions::{caption_key, checked_label, Captions, Language, MAX_CAPTION_BYTES};
use rill_vod::catalog::{CaptionRow, CatalogError};
use rill_vod::storage;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/videos/{id}/captions", get(list_captions))
        .route("/videos/{id}/captions/{lang}", put(put_caption).delete(delete_caption))
        // A little over the largest file, so an oversized one gets our 400 with the reason.
        .layer(DefaultBodyLimit::max(MAX_CAPTION_BYTES + 1024))
}

fn caption_json(origin: &str, id: &str, caption: &CaptionRow) -> Value {
    let mut value = json!(caption);
    value["url"] = json!(format!("{origin}/vod/{id}/captions/{}.vtt", caption.lang));
    value
}

fn catalog_failure(e: CatalogError) -> Response {
    match e {
        CatalogError::NoSuchVideo(id) => error(StatusCode::NOT_FOUND, format!("video {id} does not exist")),
        e => {
            tracing::error!(error = %e, "catalog request failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "the catalog is unavailable")
        }
    }
}

/// `GET /api/v1/videos/<id>/captions`.
async fn list_captions(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (id, _) = match visible_video(&app, &headers, &id, None).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match app.library.catalog.captions(id).await {
        Ok(captions) => {
            let origin = origin(&app.config, &headers);
            let list: Vec<Value> = captions.iter().map(|c| caption_json(&origin, id.as_str(), c)).collect();
            Json(json!({ "captions": list })).into_response()
        }
        Err(e) => catalog_failure(e),
    }
}

#[derive(Deserialize)]
struct PutQuery {
    label: Option<String>,
}

/// `PUT /api/v1/videos/<id>/captions/<lang>[?label=…]` with the file as the body.
async fn put_caption(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, lang)): Path<(String, String)>,
    query: Result<Query<PutQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    let (id, _) = match visible_video(&app, &headers, &id, None).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let lang = match Language::parse(&lang) {
        Ok(lang) => lang,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let label = match query.label {
        Some(label) => match checked_label(&label) {
            Ok(label) => label,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
        None => lang.default_label(),
    };
    let captions = match Captions::parse(&body) {
        Ok(captions) => captions,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("refused caption file: {e}")),
    };
    let text = captions.to_webvtt(None);
    let row = CaptionRow {
        lang: lang.to_string(),
        label,
        cues: captions.cues.len() as i64,
        size_bytes: text.len() as i64,
        created_at_ms: rill_media::wallclock::unix_ms(),
    };
    let key = caption_key(id, &lang);
    if let Err(e) = storage::run(&app.library.storage, move |s| s.put(&key, text.as_bytes())).await {
        tracing::error!(video = %id, error = %e, "storing captions failed");
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the captions could not be stored");
    }
    let stored = app.library.catalog.set_caption(id, &row).await;
    app.library.invalidate(id);
    if let Err(e) = stored {
        return catalog_failure(e);
    }
    tracing::info!(video = %id, lang = %lang, cues = row.cues, srt = captions.converted_from_srt, "captions stored");
    let mut value = caption_json(&origin(&app.config, &headers), id.as_str(), &row);
    value["converted_from_srt"] = json!(captions.converted_from_srt);
    (StatusCode::OK, Json(value)).into_response()
}

/// `DELETE /api/v1/videos/<id>/captions/<lang>`.
async fn delete_caption(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((id, lang)): Path<(String, String)>,
) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    let (id, _) = match visible_video(&app, &headers, &id, None).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(lang) = Language::parse(&lang) else {
        return error(StatusCode::NOT_FOUND, format!("video {id} has no captions in {lang:?}"));
    };
    let deleted = app.library.catalog.delete_caption(id, lang.as_str()).await;
    app.library.invalidate(id);
    match deleted {
        Ok(true) => {
            let key = caption_key(id, &lang);
            if let Err(e) = storage::run(&app.library.storage, move |s| s.remove_all(&key)).await {
                tracing::warn!(video = %id, error = %e, "removing a caption file failed");
            }
            tracing::info!(video = %id, lang = %lang, "captions deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("video {id} has no captions in {lang}")),
        Err(e) => catalog_failure(e),
    }
}
