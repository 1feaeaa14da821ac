//! `/api/v1/streams` (admin token on every route): list, show, create, delete, patch
//! (transcoding, playback), kick the publisher, rotate the key. The JSON is [`super::views`].

use super::views::{
    CreatedStream, LiveView, PackagingView, PlayUrls, RecordingView, StreamState, StreamView, UrlBase,
    WebRtcSessionView,
};
use crate::http::response::{json_error as error, public_host, INVALID_STREAM_NAME};
use crate::state::AppState;
use crate::streams::{RegistryError, StreamEntry};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rill_media::path::is_valid_stream_name;
use rill_media::StreamPath;
use rill_media::StreamSnapshot;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The stream routes (the caller adds the admin check).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/streams", get(list_streams).post(create_stream))
        .route("/streams/{name}", get(get_stream).delete(delete_stream).patch(patch_stream))
        .route("/streams/{name}/kick", post(kick))
        .route("/streams/{name}/key", post(rotate_key))
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = match self {
            RegistryError::InvalidName => StatusCode::BAD_REQUEST,
            RegistryError::Exists(_) | RegistryError::FromConfig(_) => StatusCode::CONFLICT,
            RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
            RegistryError::Store(_) => {
                tracing::error!(error = %self, "stream registry write failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        error(status, self)
    }
}

/// Host and ports for the URLs of a response to this request.
fn url_base(app: &AppState, headers: &HeaderMap) -> UrlBase {
    UrlBase {
        host: public_host(&app.config, headers),
        http_port: app.config.http.listen.port(),
        rtmp_port: app.config.rtmp.listen.port(),
        srt_port: app.config.srt.listen.port(),
    }
}

/// Stream `name` as the API shows it, from every subsystem that knows it.
fn stream_view(
    app: &AppState,
    base: &UrlBase,
    name: &str,
    entry: Option<&StreamEntry>,
    live: Option<&StreamSnapshot>,
) -> StreamView {
    let live_view = live.map(|s| {
        let sessions = app.webrtc.sessions();
        let sessions = sessions.iter().filter(|w| w.path == s.path).map(WebRtcSessionView::from).collect();
        let mut view = LiveView::new(s, sessions);
        view.webrtc_rendition = app.webrtc_renditions.as_ref().and_then(|r| r.view(&s.path));
        view
    });
    let http = base.http();
    StreamView {
        name: name.to_string(),
        state: StreamState::of(live),
        origin: entry.map(|e| e.origin),
        playback: rill_media::access::Directory::playback(&*app.access, rill_media::access::Resource::Stream(name)),
        urls: PlayUrls::new(base, name),
        live: live_view,
        viewers_now: app.audience.service.viewers_now(name).into(),
        recording: app.recorder.recording(name).map(|r| RecordingView::new(base, &r)),
        transcode: app.transcoding.view(name, |rung| format!("{http}/live/{name}/{rung}/video/media.m3u8")),
        packaging: app.packagers.get(name).map(|p| PackagingView::from(&*p.state())),
    }
}

/// The Bus's view of stream `name`, while it is live or reconnecting.
fn snapshot(app: &AppState, name: &str) -> Option<StreamSnapshot> {
    app.bus.stream_snapshot(&StreamPath::live(name).ok()?)
}

async fn list_streams(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let base = url_base(&app, &headers);
    let entries = app.registry.list();
    let live = app.bus.snapshot();
    let names: BTreeSet<String> = entries
        .iter()
        .map(|e| e.name.clone())
        // Renditions and derived feeds are shown in their source's entry.
        .chain(live.iter().filter(|s| s.path.is_source()).map(|s| s.path.name.to_string()))
        .collect();
    let streams: Vec<StreamView> = names
        .iter()
        .map(|name| {
            let entry = entries.iter().find(|e| &e.name == name);
            let snapshot = live.iter().find(|s| s.path.is_source() && s.path.name.as_str() == name);
            stream_view(&app, &base, name, entry, snapshot)
        })
        .collect();
    Json(json!({ "streams": streams })).into_response()
}

async fn get_stream(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let entry = app.registry.get(&name);
    let live = snapshot(&app, &name);
    if entry.is_none() && live.is_none() {
        return error(StatusCode::NOT_FOUND, format!("stream {name:?} does not exist"));
    }
    Json(stream_view(&app, &url_base(&app, &headers), &name, entry.as_ref(), live.as_ref())).into_response()
}

/// `PATCH /api/v1/streams/<name>`: settings of a stream that take effect at once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchStream {
    /// Replaces the stream's transcoding override (`{}` returns it to `[transcode]`).
    transcode: Option<rill_transcode::manager::StreamTranscode>,
    /// Who may watch: `"public"` or `"token"` (stored with an API-created stream).
    playback: Option<rill_media::access::Playback>,
}

async fn patch_stream(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<PatchStream>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !is_valid_stream_name(&name) {
        return error(StatusCode::BAD_REQUEST, INVALID_STREAM_NAME);
    }
    let Json(patch) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                e.status(),
                format!(
                    "expected JSON {{\"transcode\": {{\"enabled\": …, \"ladder\": […]}}, \"playback\": \"public\"|\"token\"}}: {}",
                    e.body_text()
                ),
            )
        }
    };
    if let Some(playback) = patch.playback {
        if let Err(e) = app.registry.set_playback(&name, playback) {
            return e.into_response();
        }
        tracing::info!(stream = %name, ?playback, "playback changed");
    }
    if let Some(transcode) = patch.transcode {
        if let Err(e) = app.transcoding.set_override(&name, transcode) {
            return error(StatusCode::BAD_REQUEST, e);
        }
        tracing::info!(stream = %name, "transcoding settings changed");
    }
    let entry = app.registry.get(&name);
    let live = snapshot(&app, &name);
    Json(stream_view(&app, &url_base(&app, &headers), &name, entry.as_ref(), live.as_ref())).into_response()
}

#[derive(Deserialize)]
struct CreateStream {
    name: String,
}

async fn create_stream(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<CreateStream>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(request) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, format!("expected JSON {{\"name\": \"...\"}}: {}", e.body_text()))
        }
    };
    match app.registry.create(&request.name) {
        Ok(entry) => {
            tracing::info!(stream = %entry.name, "stream created");
            (StatusCode::CREATED, Json(CreatedStream::new(&url_base(&app, &headers), &entry))).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn delete_stream(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    match app.registry.delete(&name) {
        Ok(()) => {
            if let Ok(path) = StreamPath::live(&name) {
                app.bus.close(&path);
            }
            tracing::info!(stream = %name, "stream deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn kick(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    if StreamPath::live(&name).is_ok_and(|path| app.bus.kick(&path)) {
        tracing::info!(stream = %name, "publisher kicked");
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("stream {name:?} has no publisher"))
    }
}

async fn rotate_key(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    match app.registry.rotate_key(&name) {
        Ok(entry) => {
            tracing::info!(stream = %name, "stream key rotated");
            Json(CreatedStream::new(&url_base(&app, &headers), &entry)).into_response()
        }
        Err(e) => e.into_response(),
    }
}
