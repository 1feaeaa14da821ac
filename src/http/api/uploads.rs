//! Resumable uploads, tus 1.0, under `/api/v1/uploads` (the admin token or an upload token;
//! `OPTIONS` is open, as tus discovery and CORS preflights need): `POST` creates, `HEAD` tells the offset to resume
//! from, `PATCH` appends, `DELETE` terminates, and `GET /api/v1/uploads/<id>` is the upload's
//! JSON (`state`, `offset`, `length`, `video_id`, `progress`, `eta_s`, `error`). The protocol
//! rules are in `rill_vod::upload`; this module moves headers and the body stream.

use crate::http::auth::refuse_non_admin;
use crate::http::response::{bearer, httpdate, json_error, origin};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rill_vod::catalog::UploadState;
use rill_vod::upload::{tus, UploadError, UploadStatus};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/uploads", post(create).options(options))
        .route("/uploads/{id}", axum::routing::get(status).head(head).patch(patch).delete(terminate).options(options))
        // A PATCH body is streamed to storage and bounded by the upload's declared length.
        .layer(DefaultBodyLimit::disable())
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Adds the tus headers every answer carries, and the extra `pairs`.
fn with_headers(mut response: Response, pairs: &[(&'static str, String)]) -> Response {
    let headers = response.headers_mut();
    headers.insert("tus-resumable", HeaderValue::from_static(tus::VERSION));
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

fn failure(error: UploadError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!(%error, "upload request failed");
    }
    with_headers(json_error(status, &error), &[])
}

fn expires(ms: i64) -> String {
    httpdate(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// The admin token or an upload token (`POST /api/v1/tokens` with `"action": "upload"`).
fn refuse_non_uploader(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    match bearer(headers) {
        Some(token) if app.access.check_upload(token).is_ok() => None,
        _ => refuse_non_admin(app, headers),
    }
}

/// The checks before any tus request but `OPTIONS`: the admin or an upload token, and
/// `Tus-Resumable`.
fn refuse(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    if let Some(refusal) = refuse_non_uploader(app, headers) {
        return Some(with_headers(refusal, &[]));
    }
    tus::check_version(text(headers, "tus-resumable")).err().map(|e| failure(e.into()))
}

async fn options(State(app): State<Arc<AppState>>) -> Response {
    with_headers(
        StatusCode::NO_CONTENT.into_response(),
        &[
            ("tus-version", tus::VERSION.to_owned()),
            ("tus-extension", tus::EXTENSIONS.to_owned()),
            ("tus-checksum-algorithm", tus::CHECKSUM_ALGORITHMS.to_owned()),
            ("tus-max-size", app.uploads.config().max_bytes.to_string()),
        ],
    )
}

async fn create(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse(&app, &headers) {
        return refusal;
    }
    match app.uploads.create(text(&headers, "upload-length"), text(&headers, "upload-metadata")).await {
        Ok(row) => {
            let location = format!("{}/api/v1/uploads/{}", origin(&app.config, &headers), row.id);
            tracing::info!(upload = %row.id, length = row.length, title = %row.title, "upload created");
            let body = Json(json!({ "id": row.id, "video_id": row.video_id }));
            with_headers(
                (StatusCode::CREATED, body).into_response(),
                &[("location", location), ("upload-expires", expires(row.expires_at_ms))],
            )
        }
        Err(e) => failure(e),
    }
}

async fn head(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refusal) = refuse(&app, &headers) {
        return refusal;
    }
    match app.uploads.head(&id).await {
        Ok(row) => {
            let mut pairs = vec![
                ("upload-offset", row.offset.to_string()),
                ("upload-length", row.length.to_string()),
                ("cache-control", "no-store".to_owned()),
            ];
            if row.state == UploadState::Uploading {
                pairs.push(("upload-expires", expires(row.expires_at_ms)));
            }
            with_headers(StatusCode::OK.into_response(), &pairs)
        }
        // HEAD answers carry no body.
        Err(e) => with_headers(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::NOT_FOUND).into_response(), &[]),
    }
}

async fn patch(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>, body: Body) -> Response {
    if let Some(refusal) = refuse(&app, &headers) {
        return refusal;
    }
    let content_length = text(&headers, "content-length").and_then(|v| v.trim().parse().ok());
    let outcome = app
        .uploads
        .patch(
            &id,
            text(&headers, "upload-offset"),
            text(&headers, header::CONTENT_TYPE.as_str()),
            content_length,
            text(&headers, "upload-checksum"),
            body.into_data_stream(),
        )
        .await;
    match outcome {
        Ok(outcome) => with_headers(
            StatusCode::NO_CONTENT.into_response(),
            &[("upload-offset", outcome.offset.to_string()), ("upload-expires", expires(outcome.expires_at_ms))],
        ),
        Err(e) => failure(e),
    }
}

async fn terminate(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refusal) = refuse(&app, &headers) {
        return refusal;
    }
    match app.uploads.terminate(&id).await {
        Ok(true) => with_headers(StatusCode::NO_CONTENT.into_response(), &[]),
        Ok(false) => failure(UploadError::NotFound(id.chars().take(40).collect())),
        Err(e) => failure(e),
    }
}

/// The upload as JSON: `progress` is the percent done of its current step (receiving, then
/// processing), `eta_s` the seconds processing still needs (when known).
pub fn upload_json(origin: &str, upload: &UploadStatus) -> serde_json::Value {
    let row = &upload.row;
    let (progress, eta_s) = match row.state {
        UploadState::Uploading => {
            let percent = if row.length == 0 { 100.0 } else { upload.received as f64 * 100.0 / row.length as f64 };
            (percent, None)
        }
        UploadState::Processing => upload.processing.map_or((0.0, None), |(fraction, eta)| (fraction * 100.0, eta)),
        UploadState::Ready | UploadState::Failed => (100.0, None),
    };
    let video_url = matches!(row.state, UploadState::Ready | UploadState::Failed)
        .then(|| format!("{origin}/api/v1/videos/{}", row.video_id));
    json!({
        "id": row.id,
        "state": row.state,
        "offset": row.offset,
        "received": upload.received,
        "length": row.length,
        "video_id": row.video_id,
        "video_url": video_url,
        "progress": (progress * 10.0).round() / 10.0,
        "eta_s": eta_s,
        "error": row.error,
        "title": row.title,
        "filename": row.filename,
        "sha1": row.sha1,
        "visibility": row.visibility,
        "created_at_ms": row.created_at_ms,
        "expires_at_ms": (row.state == UploadState::Uploading).then_some(row.expires_at_ms),
    })
}

async fn status(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refusal) = refuse_non_uploader(&app, &headers) {
        return refusal;
    }
    match app.uploads.status(&id).await {
        Ok(upload) => {
            let mut response = Json(upload_json(&origin(&app.config, &headers), &upload)).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => failure(e),
    }
}
