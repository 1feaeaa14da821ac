//! The catalog API under `/api/v1/videos`: listing and search (anyone sees public videos; the
//! admin token also lists unlisted and private ones), one video's details (a private video's to
//! the admin and to viewers with a play token for it), and edits (with `thumbnail_time`: the
//! poster made again from that time) and deletion (admin token).

use crate::http::auth::{is_admin, refuse_non_admin};
use crate::http::listener::PeerAddr;
use crate::http::response::{bearer, json_error as error, origin};
use crate::state::AppState;
use crate::thumbnailer::{picture_at, THUMBNAIL_WIDTH};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rill_media::access::{token_from_query, Playback, Protocol};
use rill_media::cmaf::TrackKind;
use rill_vod::catalog::{CatalogError, Video, VideoPatch, VideoQuery, Visibility};
use rill_vod::recorder::thumbnail_key;
use rill_vod::storage;
use rill_vod::upload::package::{track_init_key, track_segment_key};
use rill_vod::VideoId;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

/// Largest `PATCH` body: a title, a description and tags fit many times over.
const MAX_PATCH_BYTES: usize = 64 * 1024;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/videos", get(list_videos))
        .route("/videos/{id}", get(get_video).patch(patch_video).delete(delete_video))
        .layer(DefaultBodyLimit::max(MAX_PATCH_BYTES))
}

fn catalog_error(e: CatalogError) -> Response {
    match e {
        CatalogError::Invalid(message) => error(StatusCode::BAD_REQUEST, message),
        e => {
            tracing::error!(error = %e, "catalog request failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "the catalog is unavailable")
        }
    }
}

/// A video as the API shows it, with its playback URLs.
pub fn video_json(origin: &str, video: &Video) -> Value {
    let mut value = serde_json::to_value(video).expect("videos serialize");
    let id = &video.id;
    if let Some(object) = value.as_object_mut() {
        object.insert("hls_url".into(), json!(format!("{origin}/vod/{id}/index.m3u8")));
        object.insert("dash_url".into(), json!(format!("{origin}/vod/{id}/manifest.mpd")));
        object.insert("watch_url".into(), json!(format!("{origin}/watch/{id}")));
        let thumbnail = video.thumbnail.as_ref().map(|_| format!("{origin}/vod/{id}/thumbnail.jpg"));
        object.insert("thumbnail_url".into(), json!(thumbnail));
    }
    value
}

async fn list_videos(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<VideoQuery>, QueryRejection>,
) -> Response {
    let mut query = match query {
        Ok(Query(query)) => query,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    query.include_private = is_admin(&app, &headers);
    match app.library.catalog.list(&query).await {
        Ok(page) => {
            let origin = origin(&app.config, &headers);
            let videos: Vec<Value> = page.videos.iter().map(|v| video_json(&origin, v)).collect();
            Json(json!({ "videos": videos, "total": page.total, "limit": page.limit, "offset": page.offset }))
                .into_response()
        }
        Err(e) => catalog_error(e),
    }
}

/// A viewer's play token for one video (`?token=` or `Authorization: Bearer`), and where the
/// viewer is: a private video's details are theirs to see, as its media are.
pub(super) struct ViewerToken<'a> {
    token: &'a str,
    client: IpAddr,
}

/// The video `id` if it exists and the requester may see it: the admin, or for a private
/// video a viewer with a play token for it.
pub(super) async fn visible_video(
    app: &AppState,
    headers: &HeaderMap,
    id: &str,
    viewer: Option<ViewerToken<'_>>,
) -> Result<(VideoId, Video), Response> {
    let not_found = || error(StatusCode::NOT_FOUND, format!("video {id:?} does not exist"));
    let Some(id) = VideoId::parse(id) else { return Err(not_found()) };
    let may_see = |video: &Video| {
        video.visibility != Visibility::Private
            || is_admin(app, headers)
            || viewer.as_ref().is_some_and(|v| {
                let text = id.to_string();
                let decided =
                    app.access.decide_video(Protocol::Vod, &text, Playback::Token, Some(v.token), Some(v.client));
                decided.is_ok()
            })
    };
    match app.library.catalog.video(id).await {
        Ok(Some(video)) if may_see(&video) => Ok((id, video)),
        Ok(_) => Err(not_found()),
        Err(e) => Err(catalog_error(e)),
    }
}

/// One video, with its recorded tracks (codec, resolution, frame rate, segments, bitrate).
async fn get_video(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let token = token_from_query(query.as_deref().unwrap_or("")).or_else(|| bearer(&headers));
    let viewer = token.map(|token| ViewerToken { token, client: peer.ip() });
    let (id, video) = match visible_video(&app, &headers, &id, viewer).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut value = video_json(&origin(&app.config, &headers), &video);
    if let Ok(Some(index)) = app.library.index(id).await {
        let tracks: Vec<Value> = index
            .tracks
            .iter()
            .map(|track| {
                let mut description = json!(track.description());
                description["segments"] = json!(track.segments.len());
                description["average_kbps"] = json!(track.average_bitrate() / 1000);
                description
            })
            .collect();
        value["tracks"] = json!(tracks);
    }
    Json(value).into_response()
}

async fn patch_video(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<VideoPatch>, JsonRejection>,
) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    let (id, _) = match visible_video(&app, &headers, &id, None).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Json(patch) = match body {
        Ok(body) => body,
        Err(e) => {
            return error(
                e.status(),
                format!("expected JSON {{title, description, tags, visibility, thumbnail_time}}: {}", e.body_text()),
            )
        }
    };
    if let Some(at) = patch.thumbnail_time {
        if let Err(response) = remake_thumbnail(&app, id, at).await {
            return response;
        }
    }
    let updated = app.library.catalog.update(id, &patch).await;
    app.library.invalidate(id);
    match updated {
        Ok(Some(video)) => {
            tracing::info!(video = %id, "video edited");
            Json(video_json(&origin(&app.config, &headers), &video)).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("video {id} does not exist")),
        Err(e) => catalog_error(e),
    }
}

/// Makes the video's thumbnail again from its picture `at` seconds from its start (the top
/// rendition; a `rill thumbnail` child decodes the segment holding that time).
async fn remake_thumbnail(app: &AppState, id: VideoId, at: f64) -> Result<(), Response> {
    let index = match app.library.index(id).await {
        Ok(Some(index)) => index,
        Ok(None) => return Err(error(StatusCode::NOT_FOUND, format!("video {id} does not exist"))),
        Err(e) => return Err(catalog_error(e)),
    };
    let duration = index.duration_secs();
    if !(at.is_finite() && at >= 0.0 && at < duration) {
        let message = format!("thumbnail_time must be a number of seconds from 0 to under the video's {duration:.3}");
        return Err(error(StatusCode::BAD_REQUEST, message));
    }
    let Some(track) = index.track(TrackKind::Video) else {
        return Err(error(StatusCode::CONFLICT, "this video has no pictures"));
    };
    let at_ms = (at * 1000.0) as u64;
    let found = track.segments.iter().find_map(|s| {
        let (start, end) = track.media_range_ms(s.sequence)?;
        (at_ms >= start && at_ms < end).then_some((s.clone(), at_ms - start))
    });
    let Some((segment, offset_ms)) = found.or_else(|| {
        let last = track.segments.last()?;
        Some((last.clone(), 0))
    }) else {
        return Err(error(StatusCode::CONFLICT, "this video has no pictures"));
    };
    let exe = std::env::current_exe().map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let init = track_init_key(id, &track.name, segment.init_version);
    let media = track_segment_key(id, &track.name, segment.sequence as u64);
    let key = thumbnail_key(id);
    let stored = key.clone();
    let made = storage::run(&app.library.storage, move |s| {
        let mut bytes = s.read(&init, 0..s.size(&init)?)?.to_vec();
        bytes.extend_from_slice(&s.read(&media, 0..s.size(&media)?)?);
        let at = std::time::Duration::from_millis(offset_ms);
        let jpeg = picture_at(&exe, THUMBNAIL_WIDTH, bytes.into(), at).map_err(std::io::Error::other)?;
        s.put(&stored, &jpeg)
    })
    .await;
    if let Err(e) = made {
        tracing::warn!(video = %id, error = %e, "remaking the thumbnail failed");
        return Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("the thumbnail could not be made: {e}")));
    }
    if let Err(e) = app.library.catalog.set_thumbnail(id, &key).await {
        return Err(catalog_error(e));
    }
    tracing::info!(video = %id, at, "thumbnail remade");
    Ok(())
}

async fn delete_video(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    let (id, _) = match visible_video(&app, &headers, &id, None).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if app.recorder.is_recording(id) {
        return error(StatusCode::CONFLICT, format!("video {id} is being recorded; end the stream first"));
    }
    match app.library.delete(id).await {
        Ok(true) => {
            tracing::info!(video = %id, "video deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, format!("video {id} does not exist")),
        Err(e) => {
            tracing::error!(video = %id, error = %e, "deleting a video failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, format!("deleting video {id} failed: {e}"))
        }
    }
}
