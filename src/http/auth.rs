//! Who may call what over HTTP: the admin bearer token (`Authorization: Bearer <token>`),
//! compared in constant time; refusals are counted for metrics.

use crate::http::response::json_error;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rill_media::access::constant_time_eq;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Whether the request carries the admin token.
pub fn is_admin(app: &AppState, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(presented.as_bytes(), app.admin_token.as_bytes())
}

/// The 401 to send when the request is not the admin's (the failure is counted), else `None`.
pub fn refuse_non_admin(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    if is_admin(app, headers) {
        return None;
    }
    app.http_stats.api_auth_failures.fetch_add(1, Ordering::Relaxed);
    let mut response =
        json_error(StatusCode::UNAUTHORIZED, "missing or wrong admin token (Authorization: Bearer <token>)");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(response)
}

/// Middleware: only the admin passes.
pub async fn require_admin(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match refuse_non_admin(&app, request.headers()) {
        None => next.run(request).await,
        Some(refusal) => refusal,
    }
}
