//! WHIP (RFC 9725) and WHEP signalling on the HTTP port: `POST /whip/<name>` (publish, with
//! `Authorization: Bearer <stream-key>` or a publish token, asking the same access decision as
//! RTMP) and `POST /whep/<name>` (play; `Authorization: Bearer <play-token>` for a stream that
//! plays with a token) take an SDP offer and answer `201 Created` with the session's
//! `Location`; `DELETE` on it ends the session; `PATCH` (trickle ICE / ICE restart) is not
//! supported (405: the server is ICE-lite and the answer carries all its candidates);
//! `OPTIONS` and CORS headers let browser pages on other origins use it.

use crate::http::listener::PeerAddr;
use crate::http::response::{access_denied, bearer, set_header, INVALID_STREAM_NAME};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use rill_media::access::{self, Gate, Protocol};
use rill_media::StreamPath;
use rill_webrtc::WebRtcError;
use std::sync::Arc;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/whip/{name}", post(whip).options(options))
        .route("/whep/{name}", post(whep).options(options))
        .route("/whip/{name}/{id}", axum::routing::delete(delete).patch(patch).options(options))
        .route("/whep/{name}/{id}", axum::routing::delete(delete).patch(patch).options(options))
}

fn cors(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, DELETE, PATCH, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type, If-Match"));
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Location, ETag, Link"));
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    message.push('\n');
    cors((status, message).into_response())
}

async fn options() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

async fn patch() -> Response {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "trickle ICE and ICE restart are not supported: the answer carries every server candidate (ICE-lite); \
         send complete offers, or DELETE and POST again",
    );
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("DELETE, OPTIONS"));
    r
}

async fn delete(State(app): State<Arc<AppState>>, Path((_name, id)): Path<(String, String)>) -> Response {
    if app.webrtc.delete(&id) {
        cors(StatusCode::OK.into_response())
    } else {
        error(StatusCode::NOT_FOUND, "no such WebRTC session")
    }
}

/// The offer's text, or the response refusing it.
fn offer(headers: &HeaderMap, body: &Bytes) -> Result<String, Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/sdp") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/sdp (got {content_type:?})"),
        ));
    }
    String::from_utf8(body.to_vec()).map_err(|_| error(StatusCode::BAD_REQUEST, "malformed SDP offer: not UTF-8 text"))
}

fn refusal(e: WebRtcError) -> Response {
    let status = match &e {
        WebRtcError::BadSdp(_) | WebRtcError::Rtc(_) => StatusCode::BAD_REQUEST,
        WebRtcError::NoUsableCodec(_) => StatusCode::NOT_ACCEPTABLE,
        WebRtcError::AlreadyLive(_) => StatusCode::CONFLICT,
        WebRtcError::NotLive(_) => StatusCode::NOT_FOUND,
        WebRtcError::TooManySessions(_) => StatusCode::SERVICE_UNAVAILABLE,
        WebRtcError::Bind { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

fn created(app: &AppState, kind: &str, name: &str, c: rill_webrtc::Created) -> Response {
    let location = format!("/{kind}/{name}/{}", c.id);
    let mut r = (StatusCode::CREATED, c.answer).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // RFC 9725 §4.6: the configured STUN servers, for clients that gather through them.
    for url in &app.config.webrtc.stun_servers {
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"ice-server\"")) {
            h.append(header::LINK, v);
        }
    }
    set_header(&mut r, header::LOCATION, &location);
    set_header(&mut r, header::ETAG, &format!("\"{}\"", c.id));
    cors(r)
}

/// The Bus path of stream `name`; a 400 for a name that cannot be one.
fn valid_name(name: &str) -> Result<StreamPath, Response> {
    StreamPath::live(name).map_err(|_| error(StatusCode::BAD_REQUEST, INVALID_STREAM_NAME))
}

/// `POST /whip/<name>`: go live from a browser or OBS.
async fn whip(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = match valid_name(&name) {
        Ok(path) => path,
        Err(r) => return r,
    };
    let Some(key) = bearer(&headers) else {
        let mut r = error(StatusCode::UNAUTHORIZED, "WHIP needs `Authorization: Bearer <stream-key>`");
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    match app.access.decide(&access::Request::publish(Protocol::Whip, key, None, Some(peer.ip()))) {
        Ok(grant) if grant.name == name => {}
        Ok(_) => return error(StatusCode::FORBIDDEN, format!("this stream key does not publish stream {name}")),
        Err(denied) => return cors(access_denied(&denied)),
    }
    let sdp = match offer(&headers, &body) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match app.webrtc.whip(&path, &sdp, &peer.to_string()) {
        Ok(c) => created(&app, "whip", &name, c),
        Err(e) => {
            tracing::info!(%peer, stream = name, error = %e, "WHIP offer refused");
            refusal(e)
        }
    }
}

/// `POST /whep/<name>`: watch a live stream over WebRTC.
async fn whep(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (path, sdp) = match valid_name(&name).and_then(|path| Ok((path, offer(&headers, &body)?))) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let request = access::Request::play(Protocol::Whep, &name, bearer(&headers), Some(peer.ip()));
    if let Err(denied) = app.access.decide(&request) {
        return cors(access_denied(&denied));
    }
    match app.webrtc.whep(&path, &sdp, &peer.to_string()).await {
        Ok(c) => {
            app.relay_stats.viewers_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let text = |h| headers.get(h).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
            let viewer = app.audience.viewer(
                peer.ip(),
                text(axum::http::header::USER_AGENT).unwrap_or(""),
                text(axum::http::header::REFERER),
                None,
                text(axum::http::header::HOST),
            );
            app.audience.whep_started(&c.id, &name, viewer);
            created(&app, "whep", &name, c)
        }
        Err(e) => {
            tracing::info!(%peer, stream = name, error = %e, "WHEP offer refused");
            refusal(e)
        }
    }
}
