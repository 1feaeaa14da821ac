//! What every HTTP surface answers with: content types, cache policies, plain-text and JSON
//! errors (with CORS, so browser players on other origins read them), and the URLs this server
//! hands out (`origin`, `public_host`).

use crate::config::Config;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::SystemTime;

pub const PLAYLIST: &str = "application/vnd.apple.mpegurl";
pub const MPD: &str = "application/dash+xml";
pub const SEGMENT: &str = "video/iso.segment";

/// The refusal of a name that cannot be a stream's.
pub const INVALID_STREAM_NAME: &str = "invalid stream name (allowed: [A-Za-z0-9_-]{1,64})";

/// A response with a body, its type and cache policy, open to any origin.
pub fn respond(status: StatusCode, content_type: &'static str, cache: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// A one-line plain-text error, for media URLs (players and curl show it as it is).
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    message.push('\n');
    respond(status, "text/plain; charset=utf-8", "no-store", Body::from(message))
}

/// The access decision's refusal: 401 (with `WWW-Authenticate: Bearer`) when no credential
/// came, 403 otherwise; a short reason, never the credential.
pub fn access_denied(denied: &rill_media::access::Denied) -> Response {
    if let rill_media::access::Denied::TooManyFailures { retry_after_s } = denied {
        return too_many_failures(*retry_after_s);
    }
    let status = if denied.is_missing() { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN };
    let mut response = error(status, format!("access denied: {denied}"));
    if denied.is_missing() {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// 429 for an address refused for failing credentials too often.
pub fn too_many_failures(retry_after_s: u64) -> Response {
    let denied = rill_media::access::Denied::TooManyFailures { retry_after_s };
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, format!("access denied: {denied}"));
    if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The bearer token of `Authorization: Bearer <token>`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty())
}

/// `{"error": "…"}`, for the API.
pub fn json_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(serde_json::json!({ "error": message.to_string() }))).into_response()
}

/// `ETag` and `If-None-Match`: whether the client already holds `etag` (quoted).
pub fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    request.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes())
}

/// Sets a header whose value was built from ASCII this server chose (ids, numbers, names).
pub fn set_header(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// `scheme://host[:port]` of this server as the client reached it (or `server.public_host`).
pub fn origin(config: &Config, headers: &HeaderMap) -> String {
    let host = if config.server.public_host.is_empty() {
        headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string()
    } else {
        format!("{}:{}", config.server.public_host, config.http.listen.port())
    };
    let scheme =
        headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).filter(|p| *p == "https").unwrap_or("http");
    format!("{scheme}://{host}")
}

/// The host for URLs of other ports handed out: `server.public_host`, else the request's Host
/// without its port.
pub fn public_host(config: &Config, headers: &HeaderMap) -> String {
    if !config.server.public_host.is_empty() {
        return config.server.public_host.clone();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => host.to_string(),
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), for `Last-Modified`.
pub fn httpdate(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let month_name =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(month - 1) as usize];
    format!("{weekday}, {day:02} {month_name} {year} {h:02}:{m:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn http_dates() {
        assert_eq!(httpdate(SystemTime::UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            httpdate(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            httpdate(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_262_400)),
            "Sat, 21 Nov 2026 12:00:00 GMT"
        );
    }

    #[test]
    fn hosts_and_origins() {
        let config = Config::load(None, std::iter::empty()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("media.example:8080"));
        assert_eq!(origin(&config, &headers), "http://media.example:8080");
        assert_eq!(public_host(&config, &headers), "media.example");
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert_eq!(origin(&config, &headers), "https://media.example:8080");
        assert_eq!(public_host(&config, &HeaderMap::new()), "localhost");
    }
}
