//! Analytics reports (admin token): `GET /api/v1/videos/<id>/analytics`,
//! `/api/v1/streams/<name>/analytics`, `/api/v1/analytics/overview` (each `?period=30d`,
//! `24h`, …; 30 days by default) and `/api/v1/analytics/sessions` (newest first, filtered,
//! paginated with `before=` from the previous page's `next`). Unknown or malformed query
//! parameters are a 400 that names them.

use crate::http::response::json_error as error;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rill_analytics::report::{Period, ReportError, SessionFilter, MAX_SESSIONS_PAGE};
use rill_analytics::score::Outcome;
use rill_analytics::service::now_ms;
use rill_analytics::session::Protocol;
use rill_media::path::is_valid_stream_name;
use rill_vod::VideoId;
use std::collections::HashMap;
use std::sync::Arc;

/// The analytics routes (the caller adds the admin check).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/videos/{id}/analytics", get(video))
        .route("/streams/{name}/analytics", get(stream))
        .route("/analytics/overview", get(overview))
        .route("/analytics/sessions", get(sessions))
}

const DEFAULT_PERIOD: &str = "30d";

fn fail(e: ReportError) -> Response {
    match e {
        ReportError::Store(e) => {
            tracing::error!(error = %e, "analytics query failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "the analytics database is unavailable")
        }
        e => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// The `period` of a query that may name only `allowed` parameters.
fn period(query: &HashMap<String, String>, allowed: &[&str]) -> Result<Period, Response> {
    if let Some(unknown) = query.keys().find(|k| !allowed.contains(&k.as_str()) && k.as_str() != "period") {
        let unknown: String = unknown.chars().take(40).collect();
        return Err(error(StatusCode::BAD_REQUEST, format!("unknown query parameter {unknown:?}")));
    }
    Period::parse(query.get("period").map_or(DEFAULT_PERIOD, String::as_str), now_ms()).map_err(fail)
}

async fn video(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let period = match period(&query, &[]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(video_id) = VideoId::parse(&id) else { return error(StatusCode::NOT_FOUND, "not a video id") };
    match app.library.index(video_id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, format!("video {id} does not exist")),
        Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "the catalog is unavailable"),
    }
    match app.audience.service.store().video_report(&id, period).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => fail(e),
    }
}

async fn stream(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let period = match period(&query, &[]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !is_valid_stream_name(&name) {
        return error(StatusCode::BAD_REQUEST, crate::http::response::INVALID_STREAM_NAME);
    }
    let now = app.audience.service.viewers_now(&name);
    match app.audience.service.store().stream_report(&name, period, now).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => fail(e),
    }
}

async fn overview(State(app): State<Arc<AppState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let period = match period(&query, &[]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match app.audience.service.store().overview(period).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => fail(e),
    }
}

/// The filter of a sessions query, or the reason it is malformed.
fn session_filter(query: &HashMap<String, String>) -> Result<SessionFilter, String> {
    const ALLOWED: [&str; 9] =
        ["stream", "video", "protocol", "country", "outcome", "since", "until", "before", "limit"];
    if let Some(unknown) = query.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(format!("unknown query parameter {:?}", unknown.chars().take(40).collect::<String>()));
    }
    let id = |key: &str| -> Result<Option<String>, String> {
        match query.get(key) {
            Some(v) if is_valid_stream_name(v) => Ok(Some(v.clone())),
            Some(_) => Err(format!("invalid {key}")),
            None => Ok(None),
        }
    };
    let time = |key: &str| -> Result<Option<i64>, String> {
        query.get(key).map(|v| v.parse().map_err(|_| format!("{key} must be unix milliseconds"))).transpose()
    };
    let before = match query.get("before") {
        None => None,
        Some(v) => {
            let (at, id) = v.split_once(':').ok_or("before must be the previous page's next")?;
            let at = at.parse().map_err(|_| "before must be the previous page's next")?;
            if id.len() > 128 {
                return Err("before must be the previous page's next".into());
            }
            Some((at, id.to_owned()))
        }
    };
    let country = match query.get("country") {
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => Some(c.clone()),
        Some(_) => return Err("country must be two upper-case letters (ISO 3166)".into()),
        None => None,
    };
    Ok(SessionFilter {
        stream: id("stream")?,
        video: id("video")?,
        protocol: query
            .get("protocol")
            .map(|p| Protocol::parse(p).ok_or("protocol must be one of flv, rtmp, srt, webrtc, hls, dash"))
            .transpose()?,
        country,
        outcome: query
            .get("outcome")
            .map(|o| Outcome::parse(o).ok_or("outcome must be played, exit_before_start or failed"))
            .transpose()?,
        since: time("since")?,
        until: time("until")?,
        before,
        limit: match query.get("limit") {
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_SESSIONS_PAGE).contains(&n) => n,
                _ => return Err(format!("limit must be 1..={MAX_SESSIONS_PAGE}")),
            },
            None => 50,
        },
    })
}

async fn sessions(State(app): State<Arc<AppState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let filter = match session_filter(&query) {
        Ok(f) => f,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match app.audience.service.store().sessions(&filter).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn session_filters_are_checked() {
        let f = session_filter(&q(&[("stream", "cam"), ("protocol", "hls"), ("limit", "10")])).unwrap();
        assert_eq!((f.stream.as_deref(), f.protocol, f.limit), (Some("cam"), Some(Protocol::Hls), 10));
        for bad in [
            vec![("protocol", "gopher")],
            vec![("limit", "0")],
            vec![("limit", "100000")],
            vec![("since", "yesterday")],
            vec![("stream", "../x")],
            vec![("country", "france")],
            vec![("before", "nonsense")],
            vec![("drop table", "1")],
        ] {
            assert!(session_filter(&q(&bad)).is_err(), "{bad:?}");
        }
    }
}
