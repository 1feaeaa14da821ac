//! The catalog API under `/api/v1/videos`: listing and search (anyone sees public videos; the
//! admin token also lists unlisted and private ones), one video's details, and edits and
//! deletion (admin token).

use crate::http::auth::{is_admin, refuse_non_admin};
use crate::http::response::{json_error as error, origin};
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rill_vod::catalog::{CatalogError, Video, VideoPatch, VideoQuery, Visibility};
use rill_vod::VideoId;
use serde_json::{json, Value};
use std::sync::Arc;

/// Largest `PATCH` body: a title, a description and tags fit many times over.
const MAX_PATCH_BYTES: usize = 64 * 1024;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/videos", get(list_videos))
        .route("/videos/{id}", get(get_video).patch(patch_video).delete(delete_video))
        .layer(DefaultBodyLimit::max(MAX_PATCH_BYTES))
}

fn catalog_error(e: CatalogError) -> Response {
    match e {
        CatalogError::Invalid(message) => error(StatusCode::BAD_REQUEST, message),
        e => {
            tracing::error!(error = %e, "catalog request failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "the catalog is unavailable")
        }
    }
}

/// A video as the API shows it, with its playback URLs.
pub fn video_json(origin: &str, video: &Video) -> Value {
    let mut value = serde_json::to_value(video).expect("videos serialize");
    let id = &video.id;
    if let Some(object) = value.as_object_mut() {
        object.insert("hls_url".into(), json!(format!("{origin}/vod/{id}/index.m3u8")));
        object.insert("dash_url".into(), json!(format!("{origin}/vod/{id}/manifest.mpd")));
        object.insert("watch_url".into(), json!(format!("{origin}/watch/{id}")));
        let thumbnail = video.thumbnail.as_ref().map(|_| format!("{origin}/vod/{id}/thumbnail.jpg"));
        object.insert("thumbnail_url".into(), json!(thumbnail));
    }
    value
}

async fn list_videos(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<VideoQuery>, QueryRejection>,
) -> Response {
    let mut query = match query {
        Ok(Query(query)) => query,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    query.include_private = is_admin(&app, &headers);
    match app.library.catalog.list(&query).await {
        Ok(page) => {
            let origin = origin(&app.config, &headers);
            let videos: Vec<Value> = page.videos.iter().map(|v| video_json(&origin, v)).collect();
            Json(json!({ "videos": videos, "total": page.total, "limit": page.limit, "offset": page.offset }))
                .into_response()
        }
        Err(e) => catalog_error(e),
    }
}

/// The video `id` if it exists and the requester may see it.
pub(super) async fn visible_video(app: &AppState, headers: &HeaderMap, id: &str) -> Result<(VideoId, Video), Response> {
    let not_found = || error(StatusCode::NOT_FOUND, format!("video {id:?} does not exist"));
    let Some(id) = VideoId::parse(id) else { return Err(not_found()) };
    match app.library.catalog.video(id).await {
        Ok(Some(video)) if video.visibility != Visibility::Private || is_admin(app, headers) => Ok((id, video)),
        Ok(_) => Err(not_found()),
        Err(e) => Err(catalog_error(e)),
    }
}

/// One video, with its recorded tracks (codec, resolution, frame rate, segments, bitrate).
async fn get_video(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (id, video) = match visible_video(&app, &headers, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut value = video_json(&origin(&app.config, &headers), &video);
    if let Ok(Some(index)) = app.library.index(id).await {
        let tracks: Vec<Value> = index
            .tracks
            .iter()
            .map(|track| {
                let mut description = json!(track.description());
                description["segments"] = json!(track.segments.len());
                description["average_kbps"] = json!(track.average_bitrate() / 1000);
                description
            })
            .collect();
        value["tracks"] = json!(tracks);
    }
    Json(value).into_response()
}

async fn patch_video(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<VideoPatch>, JsonRejection>,
) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    let (id, _) = match visible_video(&app, &headers, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Json(patch) = match body {
        Ok(body) => body,
        Err(e) => {
            return error(
                e.status(),
                format!("expected JSON {{title, description, tags, visibility}}: {}", e.body_text()),
            )
        }
    };
    let updated = app.library.catalog.update(id, &patch).await;
    app.library.invalidate(id);
    match updated {
        Ok(Some(video)) => {
            tracing::info!(video = %id, "video edited");
            Json(video_json(&origin(&app.config, &headers), &video)).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("video {id} does not exist")),
        Err(e) => catalog_error(e),
    }
}

async fn delete_video(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    let (id, _) = match visible_video(&app, &headers, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if app.recorder.is_recording(id) {
        return error(StatusCode::CONFLICT, format!("video {id} is being recorded; end the stream first"));
    }
    match app.library.delete(id).await {
        Ok(true) => {
            tracing::info!(video = %id, "video deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("video {id} does not exist")),
        Err(e) => {
            tracing::error!(video = %id, error = %e, "deleting a video failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, format!("deleting video {id} failed: {e}"))
        }
    }
}
