//! Who may call what over HTTP: the admin bearer token (`Authorization: Bearer <token>`),
//! compared in constant time; refusals are counted for metrics. And [`slow_failed_credentials`],
//! the layer over the whole port that slows refused credentials and stops guessers.

use crate::http::listener::PeerAddr;
use crate::http::response::{json_error, too_many_failures};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rill_media::access::{constant_time_eq, refusal_delay, token_from_query};
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

/// Middleware over the whole HTTP port. A client that presented a credential (an
/// `Authorization` header or a `token=` parameter) and is refused (401, 403, 429) gets the answer
/// after a random pause, so guesses come slowly and timing tells nothing. A wrong admin token
/// counts as a failed credential of the client's address (the access decision counts the media
/// ones itself), and the API refuses an address that failed too often with 429 until its window
/// ends, whatever it presents then.
pub async fn slow_failed_credentials(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request.headers().contains_key(header::AUTHORIZATION)
        || request.uri().query().and_then(token_from_query).is_some();
    let api = request.uri().path().starts_with("/api/");
    if api {
        if let Some(rest) = app.access.blocked_for(peer.ip()) {
            tokio::time::sleep(refusal_delay()).await;
            return too_many_failures(rest.as_secs().max(1));
        }
    }
    let response = next.run(request).await;
    let status = response.status();
    if presented && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS) {
        if api && status == StatusCode::UNAUTHORIZED {
            app.access.record_failure(peer.ip());
        }
        tokio::time::sleep(refusal_delay()).await;
    }
    response
}
