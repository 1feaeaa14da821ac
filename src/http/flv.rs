//! HTTP-FLV: `GET /live/<name>.flv` (`?token=…` for a stream that plays with a token), one
//! endless FLV file per viewer (the body is [`rill_relay::http_flv::body`]), with a span per
//! viewer that logs how long it watched.

use crate::http::listener::PeerAddr;
use crate::http::response::bearer;
use crate::http::response::{access_denied, error, INVALID_STREAM_NAME};
use crate::state::{AppState, ON_DEMAND_WAIT};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::StreamExt;
use rill_media::access::{Gate, Protocol};
use rill_media::StreamPath;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// `GET /live/<name>.flv`: HTTP-FLV.
pub async fn live_file(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(name) = file.strip_suffix(".flv") else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let Ok(path) = StreamPath::live(name) else {
        return error(StatusCode::BAD_REQUEST, INVALID_STREAM_NAME);
    };
    let token = query.as_deref().and_then(rill_media::access::token_from_query).or(bearer(&headers));
    let request = rill_media::access::Request::play(Protocol::Flv, name, token, Some(peer.ip()));
    if let Err(denied) = app.access.decide(&request) {
        return access_denied(&denied);
    }
    app.bus.request(&path, ON_DEMAND_WAIT).await;
    if let Some(why) = app.bus.stream_snapshot(&path).and_then(|s| rill_relay::http_flv::refusal(name, &s.tracks)) {
        return error(StatusCode::NOT_ACCEPTABLE, why);
    }
    let Ok(sub) = app.bus.subscribe(&path, "http-flv") else {
        return error(StatusCode::NOT_FOUND, format!("stream {name} is not live"));
    };
    app.relay_stats.viewers_total.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("http-flv", %peer, stream = name);
    span.in_scope(|| tracing::info!("viewer started"));
    let text = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
    let session = app.audience.connect(
        rill_analytics::session::Protocol::Flv,
        name,
        peer,
        text(header::USER_AGENT).unwrap_or(""),
        text(header::REFERER),
    );
    let guard = ViewerLog { span, started: Instant::now(), _session: session };
    let body = rill_relay::http_flv::body(sub, app.relay_stats.clone()).map(move |piece| {
        let _ = &guard;
        piece
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "video/x-flv")
        .header(header::CACHE_CONTROL, "no-cache, no-store")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"))
        .body(Body::from_stream(body))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// Lives as long as the viewer's body: logs its end and ends its analytics session.
struct ViewerLog {
    span: tracing::Span,
    started: Instant,
    _session: Option<rill_analytics::service::ConnectionSession>,
}

impl Drop for ViewerLog {
    fn drop(&mut self) {
        self.span.in_scope(|| tracing::info!(watched_s = self.started.elapsed().as_secs(), "viewer stopped"));
    }
}
