//! `/api/v1/sources` (admin token on every route): RTSP cameras — list, show, add, delete —
//! over [`rill_ingest::rtsp::manager::Cameras`]. Camera URLs are shown only redacted, and a
//! refused body is never echoed (it may hold credentials).

use crate::config::SourceMode;
use crate::http::auth::refuse_non_admin;
use crate::http::response::json_error as error;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rill_ingest::rtsp;
use rill_ingest::rtsp::manager::CameraError;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The HTTP status of a refused request.
fn camera_error(e: CameraError) -> Response {
    let status = match e {
        CameraError::Invalid(_) => StatusCode::BAD_REQUEST,
        CameraError::Exists(_) | CameraError::FromConfig(_) => StatusCode::CONFLICT,
        CameraError::NotFound(_) => StatusCode::NOT_FOUND,
        CameraError::Store(_) => {
            tracing::error!(error = %e, "sources.json write failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    error(status, e)
}

/// `/api/v1/sources` (admin token on every route).
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/sources", get(list).post(create)).route("/sources/{name}", get(show).delete(delete))
}

#[derive(Deserialize)]
struct CreateSource {
    name: String,
    url: String,
    #[serde(default)]
    mode: SourceMode,
}

async fn list(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    Json(json!({ "sources": app.sources.list() })).into_response()
}

async fn show(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    match app.sources.get(&name) {
        Some(v) => Json(v).into_response(),
        None => camera_error(CameraError::NotFound(name)),
    }
}

async fn create(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<CreateSource>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    let Json(request) = match body {
        // The rejection text can quote the body: never echo it (it may hold credentials).
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected JSON {\"name\": \"...\", \"url\": \"rtsp://...\", \"mode\": \"always\"}",
            )
        }
    };
    match app.sources.create(&request.name, &request.url, request.mode) {
        Ok(value) => {
            tracing::info!(source = %request.name, url = %rtsp::redact(&request.url), "source created");
            (StatusCode::CREATED, Json(value)).into_response()
        }
        Err(e) => camera_error(e),
    }
}

async fn delete(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    match app.sources.delete(&name) {
        Ok(()) => {
            tracing::info!(source = %name, "source deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => camera_error(e),
    }
}
