//! `POST /api/v1/tokens` (admin token): mints an access token —
//! `{"action": "play" | "publish", "stream": "<name>" | "video": "<id>", "prefix": false,
//! "ttl_s": 300, "nbf": <unix s>, "ip": "<client address>"}` → `{"token", "expires_at"}`; or
//! an upload token, `{"action": "upload", "ttl_s": 3600}`, good for `/api/v1/uploads` only.

use crate::http::response::json_error as error;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rill_media::access::{Action, Claims};
use rill_media::path::is_valid_stream_name;
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

/// The token routes (the caller adds the admin check).
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/tokens", post(mint))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintToken {
    action: Action,
    stream: Option<String>,
    video: Option<String>,
    #[serde(default)]
    prefix: bool,
    ttl_s: u64,
    nbf: Option<u64>,
    ip: Option<IpAddr>,
}

/// Why a mint request is refused (a 400 with this text).
fn check(request: &MintToken, max_ttl_s: u64) -> Result<(), String> {
    if request.action == Action::Upload {
        if request.stream.is_some() || request.video.is_some() || request.prefix || request.ip.is_some() {
            return Err("an upload token names no stream or video and no address".into());
        }
    } else {
        check_resource(request)?;
    }
    if request.ttl_s == 0 || request.ttl_s > max_ttl_s {
        return Err(format!("ttl_s must be 1..={max_ttl_s}"));
    }
    Ok(())
}

/// The stream or video a play or publish token names.
fn check_resource(request: &MintToken) -> Result<(), String> {
    match (&request.stream, &request.video) {
        (Some(_), Some(_)) | (None, None) => return Err("give exactly one of \"stream\" and \"video\"".into()),
        (Some(name), None) if !request.prefix && !is_valid_stream_name(name) => {
            return Err("invalid stream name (allowed: [A-Za-z0-9_-]{1,64})".into())
        }
        (None, Some(_)) if request.action == Action::Publish => return Err("videos are not published".into()),
        _ => {}
    }
    if request.action == Action::Publish && request.prefix {
        return Err("a publish token names its stream exactly".into());
    }
    Ok(())
}

async fn mint(
    State(app): State<Arc<AppState>>,
    body: Result<Json<MintToken>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(b) => b,
        Err(e) => {
            let hint =
                r#"expected JSON {"action": "play"|"publish", "stream": "<name>" | "video": "<id>", "ttl_s": 300}"#;
            return error(StatusCode::BAD_REQUEST, format!("{hint}: {}", e.body_text()));
        }
    };
    if let Err(why) = check(&request, app.access.max_ttl_s()) {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let now = rill_media::wallclock::unix_s();
    let claims = Claims {
        act: request.action,
        stream: request.stream,
        video: request.video,
        prefix: request.prefix,
        exp: now + request.ttl_s,
        nbf: request.nbf,
        iat: Some(now),
        ip: request.ip,
        sid: None,
    };
    tracing::info!(action = claims.act.as_str(), stream = ?claims.stream, video = ?claims.video, ttl_s = request.ttl_s, "token minted");
    (StatusCode::CREATED, Json(json!({ "token": app.access.mint(&claims), "expires_at": claims.exp }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> MintToken {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn mint_requests_are_checked() {
        let ok = request(json!({"action": "play", "stream": "studio", "ttl_s": 300}));
        assert_eq!(check(&ok, 3600), Ok(()));
        assert!(check(&request(json!({"action": "play", "stream": "studio", "ttl_s": 7200})), 3600).is_err());
        assert!(check(&request(json!({"action": "play", "ttl_s": 5})), 3600).is_err());
        assert!(check(&request(json!({"action": "play", "stream": "a", "video": "b", "ttl_s": 5})), 3600).is_err());
        assert!(check(&request(json!({"action": "publish", "video": "b", "ttl_s": 5})), 3600).is_err());
        assert!(check(&request(json!({"action": "publish", "stream": "a", "prefix": true, "ttl_s": 5})), 3600).is_err());
        assert!(check(&request(json!({"action": "play", "stream": "../x", "ttl_s": 5})), 3600).is_err());
        assert!(serde_json::from_value::<MintToken>(json!({"action": "delete", "stream": "a", "ttl_s": 5})).is_err());
    }
}
