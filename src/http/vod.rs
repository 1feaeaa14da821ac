//! VOD over HTTP: `/vod/<id>/index.m3u8` (multivariant), `/vod/<id>/manifest.mpd`, and per
//! track `/vod/<id>/<track>/index.m3u8`, `init-<v>.mp4` and `<sequence>.m4s`, rendered from
//! the catalog's index, `/vod/<id>/thumbnail.jpg`, and captions: `/vod/<id>/captions/<lang>.m3u8`
//! (the HLS subtitles playlist) and `<lang>.vtt` (with the HLS timestamp map), and the seek
//! previews `/vod/<id>/storyboard.vtt` + `storyboard.jpg`; [`download`]: `/vod/<id>/download`.
//! Segments support `Range` and are cached as immutable. Who may watch (private videos: a play
//! token or the admin token) is decided by the [`crate::http::media_access`] layer; any other
//! id, track or file name is refused before storage is touched.

mod download;

use crate::http::response::{error, not_modified, origin, respond, set_header, MPD, PLAYLIST, SEGMENT};
use crate::state::AppState;
use crate::storyboard;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use rill_vod::captions::{caption_key, with_timestamp_map, Language};
use rill_vod::catalog::Visibility;
use rill_vod::manifest::{self, VideoIndex};
use rill_vod::upload::package::{track_init_key, track_segment_key};
use rill_vod::VideoId;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

/// Segments and init segments never change once indexed.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// A finished video's manifests change only if it is edited or deleted.
const FINISHED: &str = "public, max-age=60";
/// A recording's manifests grow with every segment.
const GROWING: &str = "public, max-age=1";
const PRIVATE: &str = "private, no-cache";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/vod/{id}/{file}", get(video_file))
        .route("/vod/{id}/{track}/{file}", get(track_file))
        .route("/vod/{id}/download", get(download::download))
}

/// Finds a playable video (the access layer already let the requester in).
async fn lookup(app: &AppState, id: &str) -> Result<Arc<VideoIndex>, Response> {
    let not_found = || error(StatusCode::NOT_FOUND, format!("video {id} does not exist"));
    let Some(id) = VideoId::parse(id) else {
        return Err(error(StatusCode::NOT_FOUND, "not a video id"));
    };
    let index = match app.library.index(id).await {
        Ok(Some(index)) => index,
        Ok(None) => return Err(not_found()),
        Err(e) => {
            tracing::error!(video = %id, error = %e, "catalog lookup failed");
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the catalog is unavailable"));
        }
    };
    if !index.is_playable() {
        return Err(error(StatusCode::NOT_FOUND, format!("video {id} has no media yet")));
    }
    app.http_stats.vod_requests.fetch_add(1, Ordering::Relaxed);
    Ok(index)
}

fn manifest_cache(index: &VideoIndex) -> &'static str {
    match (index.video.visibility, index.is_live()) {
        (Visibility::Private, _) => PRIVATE,
        (_, true) => GROWING,
        (_, false) => FINISHED,
    }
}

/// `GET /vod/<id>/index.m3u8` and `/vod/<id>/manifest.mpd`.
async fn video_file(
    State(app): State<Arc<AppState>>,
    Path((id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let index = match lookup(&app, &id).await {
        Ok(index) => index,
        Err(response) => return response,
    };
    let cache = manifest_cache(&index);
    match file.as_str() {
        "index.m3u8" => respond(StatusCode::OK, PLAYLIST, cache, Body::from(manifest::multivariant(&index))),
        "manifest.mpd" => {
            let time_url = format!("{}/time", origin(&app.config, &headers));
            let mpd = manifest::dash_manifest(&index, SystemTime::now(), &time_url);
            respond(StatusCode::OK, MPD, cache, Body::from(mpd))
        }
        "storyboard.vtt" | "storyboard.jpg" => {
            let Some(video) = VideoId::parse(&id) else { return error(StatusCode::NOT_FOUND, "not a video id") };
            let key = if file == "storyboard.vtt" { storyboard::vtt_key(video) } else { storyboard::sprite_key(video) };
            match app.library.size(key.clone()).await {
                Ok(size) => serve_object(&app, &index, key, Some(size), &headers).await,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    error(StatusCode::NOT_FOUND, "this video has no storyboard (yet)")
                }
                Err(e) => storage_error(&key, e),
            }
        }
        "thumbnail.jpg" => match &index.video.thumbnail {
            Some(key) => serve_object(&app, &index, key.clone(), None, &headers).await,
            None => error(StatusCode::NOT_FOUND, "this video has no thumbnail"),
        },
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// What a track file name asks for.
enum TrackFile {
    Playlist,
    Init(i64),
    Segment(i64),
}

impl TrackFile {
    fn parse(file: &str) -> Option<TrackFile> {
        let number = |digits: &str| -> Option<i64> {
            (!digits.is_empty() && digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())?
        };
        if file == "index.m3u8" {
            Some(TrackFile::Playlist)
        } else if let Some(version) = file.strip_prefix("init-").and_then(|f| f.strip_suffix(".mp4")) {
            number(version).map(TrackFile::Init)
        } else {
            file.strip_suffix(".m4s").and_then(number).map(TrackFile::Segment)
        }
    }
}

/// `GET /vod/<id>/<track>/<file>`.
async fn track_file(
    State(app): State<Arc<AppState>>,
    Path((id, track, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let index = match lookup(&app, &id).await {
        Ok(index) => index,
        Err(response) => return response,
    };
    if track == "captions" {
        return captions_file(&app, &index, &file).await;
    }
    // Only a track the video's index has (`video`, `audio`, an upload's `video-<rung>`) is
    // looked up, so no other name reaches storage.
    let Some(track) = index.track_named(&track) else { return error(StatusCode::NOT_FOUND, "no such track") };
    let Some(id) = VideoId::parse(&id) else { return error(StatusCode::NOT_FOUND, "not a video id") };
    let (key, size) = match TrackFile::parse(&file) {
        None => return error(StatusCode::NOT_FOUND, "not found"),
        Some(TrackFile::Playlist) => {
            let playlist = manifest::media_playlist(&index, track);
            return respond(StatusCode::OK, PLAYLIST, manifest_cache(&index), Body::from(playlist));
        }
        Some(TrackFile::Init(version)) if track.has_init(version) => (track_init_key(id, &track.name, version), None),
        Some(TrackFile::Segment(sequence)) => match track.segment(sequence) {
            Some(segment) => (track_segment_key(id, &track.name, sequence as u64), Some(segment.size_bytes as u64)),
            None => return error(StatusCode::NOT_FOUND, "no such segment"),
        },
        Some(TrackFile::Init(_)) => return error(StatusCode::NOT_FOUND, "no such init segment"),
    };
    serve_object(&app, &index, key, size, &headers).await
}

/// `GET /vod/<id>/captions/<lang>.m3u8` and `<lang>.vtt`: only a language the index lists
/// reaches storage (under its canonical key).
async fn captions_file(app: &AppState, index: &VideoIndex, file: &str) -> Response {
    let (lang, vtt) = match (file.strip_suffix(".vtt"), file.strip_suffix(".m3u8")) {
        (Some(lang), _) => (lang, true),
        (_, Some(lang)) => (lang, false),
        _ => return error(StatusCode::NOT_FOUND, "not found"),
    };
    let Some(caption) = index.caption(lang) else {
        return error(StatusCode::NOT_FOUND, "no captions in this language");
    };
    if !vtt {
        let playlist = manifest::caption_playlist(index, &caption.lang);
        return respond(StatusCode::OK, PLAYLIST, manifest_cache(index), Body::from(playlist));
    }
    let (Some(id), Ok(lang)) = (VideoId::parse(&index.video.id), Language::parse(&caption.lang)) else {
        return error(StatusCode::NOT_FOUND, "no captions in this language");
    };
    let key = caption_key(id, &lang);
    let stored = match app.library.size(key.clone()).await {
        Ok(size) => app.library.read(key.clone(), 0..size).await,
        Err(e) => Err(e),
    };
    match stored {
        Ok(bytes) => {
            let text = with_timestamp_map(&String::from_utf8_lossy(&bytes), index.start_90khz());
            respond(StatusCode::OK, "text/vtt; charset=utf-8", manifest_cache(index), Body::from(text))
        }
        Err(e) => storage_error(&key, e),
    }
}

/// Serves a stored object, honouring `Range` (one range; several are answered with the whole
/// object, which RFC 9110 allows) and `If-None-Match`.
async fn serve_object(
    app: &AppState,
    index: &VideoIndex,
    key: String,
    indexed_size: Option<u64>,
    headers: &HeaderMap,
) -> Response {
    let size = match indexed_size {
        Some(size) => size,
        None => match app.library.size(key.clone()).await {
            Ok(size) => size,
            Err(e) => return storage_error(&key, e),
        },
    };
    let etag = format!("\"{}-{}-{size}\"", index.video.id, key.rsplit('/').next().unwrap_or_default());
    let cache = if index.video.visibility == Visibility::Private { PRIVATE_IMMUTABLE } else { IMMUTABLE };
    let content_type = match key.rsplit_once('.').map(|(_, extension)| extension) {
        Some("mp4") => "video/mp4",
        Some("jpg") => "image/jpeg",
        Some("vtt") => "text/vtt; charset=utf-8",
        _ => SEGMENT,
    };
    if not_modified(headers, &etag) {
        let mut response = respond(StatusCode::NOT_MODIFIED, content_type, cache, Body::empty());
        set_header(&mut response, header::ETAG, &etag);
        return response;
    }
    let range = match headers.get(header::RANGE).map(|v| parse_range(v.to_str().unwrap_or(""), size)) {
        None | Some(RangeRequest::Ignored) => None,
        Some(RangeRequest::Unsatisfiable) => {
            let mut response = error(StatusCode::RANGE_NOT_SATISFIABLE, format!("the object has {size} bytes"));
            set_header(&mut response, header::CONTENT_RANGE, &format!("bytes */{size}"));
            return response;
        }
        Some(RangeRequest::Bytes(range)) => Some(range),
    };
    let (status, wanted) = match &range {
        Some(range) => (StatusCode::PARTIAL_CONTENT, range.clone()),
        None => (StatusCode::OK, 0..size),
    };
    let bytes = match app.library.read(key.clone(), wanted.clone()).await {
        Ok(bytes) => bytes,
        Err(e) => return storage_error(&key, e),
    };
    app.http_stats.vod_bytes_out.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let mut response = respond(status, content_type, cache, Body::from(bytes));
    set_header(&mut response, header::ETAG, &etag);
    response.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if range.is_some() {
        set_header(&mut response, header::CONTENT_RANGE, &format!("bytes {}-{}/{size}", wanted.start, wanted.end - 1));
    }
    response
}

fn storage_error(key: &str, e: std::io::Error) -> Response {
    tracing::error!(key, error = %e, "reading a recording failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "the recording cannot be read")
}

#[derive(Debug, PartialEq)]
pub(super) enum RangeRequest {
    /// Not a single byte range we serve partially: answer with the whole object.
    Ignored,
    Unsatisfiable,
    Bytes(std::ops::Range<u64>),
}

/// A `Range` header value for an object of `size` bytes (RFC 9110 §14.1.2).
pub(super) fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return RangeRequest::Ignored };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return RangeRequest::Ignored };
    let parse = |s: &str| s.trim().parse::<u64>().ok();
    let range = match (first.trim().is_empty(), parse(first), parse(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(suffix)) if suffix > 0 => size.saturating_sub(suffix)..size,
        (true, ..) => return RangeRequest::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => start..size,
        (false, Some(start), Some(end)) if end >= start => start..end.saturating_add(1).min(size),
        _ => return RangeRequest::Ignored,
    };
    if range.start >= size || range.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Bytes(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-99", 1000), Bytes(0..100));
        assert_eq!(parse_range("bytes=900-", 1000), Bytes(900..1000));
        assert_eq!(parse_range("bytes=-100", 1000), Bytes(900..1000));
        assert_eq!(parse_range("bytes=-2000", 1000), Bytes(0..1000));
        assert_eq!(parse_range("bytes=990-2000", 1000), Bytes(990..1000));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=5000-6000", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), Ignored);
        assert_eq!(parse_range("bytes=0-1,5-9", 1000), Ignored);
        assert_eq!(parse_range("items=0-1", 1000), Ignored);
        assert_eq!(parse_range("bytes=x-y", 1000), Ignored);
        assert_eq!(parse_range("bytes=18446744073709551615-18446744073709551615", 1000), Unsatisfiable);
    }

    #[test]
    fn track_file_names() {
        assert!(matches!(TrackFile::parse("index.m3u8"), Some(TrackFile::Playlist)));
        assert!(matches!(TrackFile::parse("init-3.mp4"), Some(TrackFile::Init(3))));
        assert!(matches!(TrackFile::parse("42.m4s"), Some(TrackFile::Segment(42))));
        for bad in
            ["", "..", "../x.m4s", "-1.m4s", "+1.m4s", "1.m4s.tmp", "init-.mp4", "99999999999999999999.m4s", "a.m4s"]
        {
            assert!(TrackFile::parse(bad).is_none(), "{bad:?}");
        }
    }
}
