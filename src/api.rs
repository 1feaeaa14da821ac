//! The REST API under `/api/v1`: streams, their keys, kicking publishers (admin bearer token),
//! and the video catalog ([`crate::videos_api`]).

use crate::streams::{constant_time_eq, RegistryError, StreamEntry};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rill_media::{CodecConfig, StreamPath, StreamSnapshot};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/streams", get(list_streams).post(create_stream))
        .route("/streams/{name}", get(get_stream).delete(delete_stream).patch(patch_stream))
        .route("/streams/{name}/kick", post(kick))
        .route("/streams/{name}/key", post(rotate_key))
        .layer(middleware::from_fn_with_state(state, require_admin))
        .merge(crate::videos_api::router())
        .merge(crate::sources::router())
}

/// Whether the request carries the admin token (`Authorization: Bearer <token>`).
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
    app.api_auth_failures.fetch_add(1, Ordering::Relaxed);
    let mut response = error(StatusCode::UNAUTHORIZED, "missing or wrong admin token (Authorization: Bearer <token>)");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("valid header"));
    Some(response)
}

async fn require_admin(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match refuse_non_admin(&app, request.headers()) {
        None => next.run(request).await,
        Some(refusal) => refusal,
    }
}

pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
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

/// The host for URLs handed out: `server.public_host`, else the request's Host without port.
fn public_host(app: &AppState, headers: &HeaderMap) -> String {
    if !app.config.server.public_host.is_empty() {
        return app.config.server.public_host.clone();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => host.to_string(),
    }
}

fn urls(app: &AppState, host: &str, name: &str) -> Value {
    let http = app.config.http.listen.port();
    let rtmp = app.config.rtmp.listen.port();
    json!({
        "flv_url": format!("http://{host}:{http}/live/{name}.flv"),
        "hls_url": format!("http://{host}:{http}/live/{name}/index.m3u8"),
        "dash_url": format!("http://{host}:{http}/live/{name}/manifest.mpd"),
        "player_url": format!("http://{host}:{http}/play/{name}"),
        "rtmp_play_url": format!("rtmp://{host}:{rtmp}/live/{name}"),
        "srt_play_url": format!("srt://{host}:{}?streamid=read:live/{name}", app.config.srt.listen.port()),
    })
}

fn stream_json(
    app: &AppState,
    host: &str,
    name: &str,
    entry: Option<&StreamEntry>,
    live: Option<&StreamSnapshot>,
) -> Value {
    let state = match live {
        Some(s) if s.publisher.is_some() => "live",
        Some(_) => "reconnecting",
        None => "offline",
    };
    let mut value = json!({
        "name": name,
        "state": state,
        "origin": entry.map(|e| e.origin),
        "urls": urls(app, host, name),
    });
    if let Some(s) = live {
        let video = s.tracks.video.as_ref().map(|v| {
            let mut j =
                json!({ "codec": v.name(), "codecs": v.rfc6381(), "fps": (s.video_fps * 100.0).round() / 100.0 });
            if let CodecConfig::Avc(avc) = v {
                j["width"] = json!(avc.sps.width);
                j["height"] = json!(avc.sps.height);
            }
            j
        });
        let audio = s.tracks.audio.as_ref().map(|a| {
            let mut j = json!({ "codec": a.name(), "codecs": a.rfc6381() });
            if let CodecConfig::Aac(aac) = a {
                j["sample_rate"] = json!(aac.info.sample_rate);
                j["channels"] = json!(aac.info.channels);
            }
            j
        });
        let obj = value.as_object_mut().expect("object");
        obj.insert(
            "publisher".into(),
            json!(s.publisher.as_ref().map(|p| json!({ "protocol": p.protocol, "address": p.peer }))),
        );
        obj.insert("uptime_s".into(), json!(s.publishing_for.map_or(0, |d| d.as_secs())));
        obj.insert("video".into(), json!(video));
        obj.insert("audio".into(), json!(audio));
        obj.insert("encoder".into(), json!(s.tracks.encoder));
        obj.insert("ingest_kbps".into(), json!(s.ingest_kbps.round()));
        obj.insert("viewers".into(), json!(s.viewers));
        obj.insert("viewers_total".into(), json!(s.viewers.values().sum::<usize>()));
        obj.insert("webrtc_sessions".into(), crate::webrtc_http::sessions_json(app, &s.path));
    }
    if let Some(recording) = app.recorder.recording(name) {
        value.as_object_mut().expect("object").insert(
            "recording".into(),
            json!({
                "video_id": recording.video_id.to_string(),
                "state": if recording.failed() { "failed" } else { "recording" },
                "error": recording.error(),
                "segments": recording.segments.load(Ordering::Relaxed),
                "bytes": recording.bytes_written.load(Ordering::Relaxed),
                "watch_url": format!("http://{host}:{}/watch/{}", app.config.http.listen.port(), recording.video_id),
            }),
        );
    }
    let (setting, enabled) = app.transcoding.setting(name);
    let mut transcode = json!({ "enabled": enabled, "ladder": setting.ladder });
    if let Some(ladder) = app.transcoding.snapshot(name) {
        let port = app.config.http.listen.port();
        let renditions: Vec<Value> = ladder
            .rungs
            .iter()
            .map(|r| {
                let mut j = json!(r);
                j["hls_url"] = json!(format!("http://{host}:{port}/live/{name}/{}/video/media.m3u8", r.name));
                j
            })
            .collect();
        let obj = transcode.as_object_mut().expect("object");
        obj.insert("renditions".into(), json!(renditions));
        obj.insert("input_frames".into(), json!(ladder.input_frames));
        obj.insert("input_dropped".into(), json!(ladder.input_dropped));
        obj.insert("error".into(), json!(ladder.error));
    }
    value.as_object_mut().expect("object").insert("transcode".into(), transcode);
    if let Some(packaged) = app.packagers.get(name) {
        let st = packaged.state();
        let tracks: Vec<Value> = st
            .tracks
            .iter()
            .map(|t| {
                json!({
                    "track": t.kind().as_str(),
                    "segments": t.segments.len(),
                    "last_segment": t.last_complete_msn(),
                    "last_part": t.last_part().map(|(m, p)| format!("{m}.{p}")),
                    "peak_kbps": t.peak_bitrate() / 1000,
                })
            })
            .collect();
        value
            .as_object_mut()
            .expect("object")
            .insert("packaging".into(), json!({ "ended": st.ended, "tracks": tracks, "unsupported": st.unsupported }));
    }
    value
}

async fn list_streams(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Json<Value> {
    let host = public_host(&app, &headers);
    let entries = app.registry.list();
    let live = app.bus.snapshot();
    let names: BTreeSet<String> = entries
        .iter()
        .map(|e| e.name.clone())
        // Renditions are shown in their source's entry.
        .chain(live.iter().filter(|s| s.path.is_source()).map(|s| s.path.name.to_string()))
        .collect();
    let streams: Vec<Value> = names
        .iter()
        .map(|name| {
            let entry = entries.iter().find(|e| &e.name == name);
            let snapshot = live.iter().find(|s| s.path.is_source() && s.path.name.as_str() == name);
            stream_json(&app, &host, name, entry, snapshot)
        })
        .collect();
    Json(json!({ "streams": streams }))
}

async fn get_stream(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let entry = app.registry.get(&name);
    let live = StreamPath::live(&name).ok().and_then(|path| app.bus.stream_snapshot(&path));
    if entry.is_none() && live.is_none() {
        return error(StatusCode::NOT_FOUND, format!("stream {name:?} does not exist"));
    }
    Json(stream_json(&app, &public_host(&app, &headers), &name, entry.as_ref(), live.as_ref())).into_response()
}

/// `PATCH /api/v1/streams/<name>`: settings of a stream that take effect at once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchStream {
    /// Replaces the stream's transcoding override (`{}` returns it to `[transcode]`).
    transcode: Option<crate::transcoding::StreamTranscode>,
}

async fn patch_stream(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<PatchStream>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !rill_media::path::is_valid_stream_name(&name) {
        return error(StatusCode::BAD_REQUEST, "invalid stream name (allowed: [A-Za-z0-9_-]{1,64})");
    }
    let Json(patch) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                e.status(),
                format!("expected JSON {{\"transcode\": {{\"enabled\": …, \"ladder\": […]}}}}: {}", e.body_text()),
            )
        }
    };
    if let Some(transcode) = patch.transcode {
        if let Err(e) = app.transcoding.set_override(&name, transcode) {
            return error(StatusCode::BAD_REQUEST, e);
        }
        tracing::info!(stream = %name, "transcoding settings changed");
    }
    let entry = app.registry.get(&name);
    let live = StreamPath::live(&name).ok().and_then(|path| app.bus.stream_snapshot(&path));
    Json(stream_json(&app, &public_host(&app, &headers), &name, entry.as_ref(), live.as_ref())).into_response()
}

#[derive(Deserialize)]
struct CreateStream {
    name: String,
}

fn created_json(app: &AppState, host: &str, entry: &StreamEntry) -> Value {
    let rtmp = app.config.rtmp.listen.port();
    let mut value = json!({
        "name": entry.name,
        "key": entry.key,
        "rtmp_url": format!("rtmp://{host}:{rtmp}/live/{}", entry.key),
        "rtmp_server": format!("rtmp://{host}:{rtmp}/live"),
        "srt_url": format!("srt://{host}:{}?streamid=publish:live/{}", app.config.srt.listen.port(), entry.key),
        "created_at": entry.created_at,
    });
    if let (Some(obj), Value::Object(u)) = (value.as_object_mut(), urls(app, host, &entry.name)) {
        obj.extend(u);
    }
    value
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
            (StatusCode::CREATED, Json(created_json(&app, &public_host(&app, &headers), &entry))).into_response()
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
            Json(created_json(&app, &public_host(&app, &headers), &entry)).into_response()
        }
        Err(e) => e.into_response(),
    }
}
