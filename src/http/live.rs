//! LL-HLS and DASH over HTTP: the playlists, MPD, init segments, segments and parts of
//! `/live/<name>/…` from the packager, with blocking requests, CDN-friendly caching headers
//! and CORS; and `/time` for DASH clock sync.

use crate::http::response::{
    error, httpdate, not_modified, origin, respond, set_header, INVALID_STREAM_NAME, MPD, PLAYLIST, SEGMENT,
};
use crate::state::{AppState, ON_DEMAND_WAIT};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use rill_media::cmaf::{fmp4, TrackKind};
use rill_media::path::is_valid_stream_name;
use rill_media::wallclock::iso8601;
use rill_media::StreamPath;
use rill_relay::dash;
use rill_relay::hls;
use rill_relay::packager::{LiveState, LiveStream, TrackFile};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Segments and parts never change under their name (the name carries the stream's epoch).
const IMMUTABLE: &str = "public, max-age=86400, immutable";
/// Playlists and the MPD change every part.
const SHORT: &str = "public, max-age=0, must-revalidate";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/live/{name}/{file}", get(stream_file))
        .route("/live/{name}/{track}/{file}", get(track_file))
        .route("/live/{name}/{rendition}/{track}/{file}", get(rendition_track_file))
        .route("/time", get(time))
}

/// `GET /time`: the server's clock, for DASH `UTCTiming` (http-iso).
async fn time() -> Response {
    respond(StatusCode::OK, "text/plain", "no-store", Body::from(iso8601(SystemTime::now())))
}

/// A request that cannot be served: its status and a one-line reason.
struct Refusal(StatusCode, String);

impl From<Refusal> for Response {
    fn from(Refusal(status, message): Refusal) -> Response {
        error(status, message)
    }
}

/// The packaged stream `name` (an on-demand source is started and waited for), marked as
/// watched.
async fn lookup(app: &AppState, name: &str) -> Result<Arc<LiveStream>, Refusal> {
    let Ok(path) = StreamPath::live(name) else {
        return Err(Refusal(StatusCode::BAD_REQUEST, INVALID_STREAM_NAME.into()));
    };
    let not_live = || Refusal(StatusCode::NOT_FOUND, format!("stream {name} is not live"));
    let stream = match app.packagers.get(name).filter(|s| !s.state().ended) {
        Some(stream) => stream,
        None => {
            if !app.bus.request(&path, ON_DEMAND_WAIT).await {
                // An ended stream's playlists stay up (with ENDLIST) for a while.
                return app.packagers.get(name).ok_or_else(not_live);
            }
            // The packager starts with the stream: give it a moment to register.
            let deadline = Instant::now() + Duration::from_secs(2);
            app.packagers.wait_live(name, deadline).await.ok_or_else(not_live)?
        }
    };
    stream.touch();
    Ok(stream)
}

/// Waits until every track of the stream has a complete segment: players that ignore parts
/// (ffmpeg, older HLS clients) need one, and it gives the multivariant playlist a measured
/// bitrate. Only the first seconds of a stream wait.
async fn wait_for_media(stream: &LiveStream) -> Result<(), Refusal> {
    let deadline = Instant::now() + 3 * stream.config.segment_target();
    let has_media = |st: &LiveState| {
        (!st.tracks.is_empty() && st.tracks.iter().all(|t| t.last_complete_msn().is_some())) || st.ended
    };
    match stream.wait_for(deadline, |st| has_media(st).then_some(())).await {
        Some(()) => Ok(()),
        None => {
            Err(Refusal(StatusCode::SERVICE_UNAVAILABLE, "the stream has no media yet (waiting for a keyframe)".into()))
        }
    }
}

/// `GET /live/<name>/index.m3u8`, `/live/<name>/manifest.mpd` and `/live/<name>/thumbnail.jpg`.
async fn stream_file(
    State(app): State<Arc<AppState>>,
    Path((name, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if file == "thumbnail.jpg" && is_valid_stream_name(&name) {
        return thumbnail(&app, &name, &headers);
    }
    let stream = match lookup(&app, &name).await {
        Ok(s) => s,
        Err(r) => return r.into(),
    };
    if file != "index.m3u8" && file != "manifest.mpd" {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    if let Err(r) = wait_for_media(&stream).await {
        return r.into();
    }
    stream.stats().playlist_requests.fetch_add(1, Ordering::Relaxed);
    let renditions = app.packagers.renditions(&name);
    let guards: Vec<_> = renditions.iter().map(|r| (r.rendition().unwrap_or_default(), r.state())).collect();
    let views: Vec<hls::RenditionView<'_>> = guards.iter().map(|(name, st)| (*name, &**st)).collect();
    let st = stream.state();
    if file == "index.m3u8" {
        return respond(StatusCode::OK, PLAYLIST, SHORT, Body::from(hls::multivariant(&st, &views)));
    }
    let time_url = format!("{}/time", origin(&app.config, &headers));
    let mpd = dash::manifest(&st, &views, &stream.config, SystemTime::now(), &time_url);
    respond(StatusCode::OK, MPD, SHORT, Body::from(mpd))
}

fn track_kind(track: &str) -> Option<TrackKind> {
    match track {
        "video" => Some(TrackKind::Video),
        "audio" => Some(TrackKind::Audio),
        _ => None,
    }
}

/// `GET /live/<name>/<track>/<file>`: media playlist, init segment, segment or part.
async fn track_file(
    State(app): State<Arc<AppState>>,
    Path((name, track, file)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match lookup(&app, &name).await {
        Ok(stream) => serve_track_file(&app, stream, &track, &file, query, &headers).await,
        Err(r) => r.into(),
    }
}

/// `GET /live/<name>/<rendition>/<track>/<file>`: the same for a transcoded rendition.
async fn rendition_track_file(
    State(app): State<Arc<AppState>>,
    Path((name, rendition, track, file)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !is_valid_stream_name(&name) || !is_valid_stream_name(&rendition) {
        return error(StatusCode::BAD_REQUEST, "invalid stream or rendition name (allowed: [A-Za-z0-9_-]{1,64})");
    }
    let Some(stream) = app.packagers.get(&format!("{name}/{rendition}")) else {
        return error(StatusCode::NOT_FOUND, format!("stream {name} has no live rendition {rendition}"));
    };
    stream.touch();
    serve_track_file(&app, stream, &track, &file, query, &headers).await
}

async fn serve_track_file(
    app: &AppState,
    stream: Arc<LiveStream>,
    track: &str,
    file: &str,
    query: Option<String>,
    headers: &HeaderMap,
) -> Response {
    let name = stream.name.clone();
    let (Some(kind), Some(file)) = (track_kind(track), TrackFile::parse(file)) else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    if let Err(r) = wait_for_media(&stream).await {
        return r.into();
    }
    if stream.state().track(kind).is_none() {
        return error(StatusCode::NOT_FOUND, format!("stream {name} has no {track} track"));
    }
    let epoch = stream.state().epoch;
    match file {
        TrackFile::Playlist => media_playlist(app, &stream, kind, query.as_deref().unwrap_or("")).await,
        TrackFile::Init { epoch: e, .. } | TrackFile::Segment { epoch: e, .. } | TrackFile::Part { epoch: e, .. }
            if e != epoch =>
        {
            error(StatusCode::NOT_FOUND, "not found (from an earlier run of this stream)")
        }
        TrackFile::Init { version, .. } => {
            let st = stream.state();
            match st.track(kind).and_then(|t| t.init(version)) {
                Some(init) => {
                    immutable(&stream, &headers, format!("{epoch}-{track}-init-{version}"), "video/mp4", init.clone())
                }
                None => error(StatusCode::NOT_FOUND, "no such init segment"),
            }
        }
        TrackFile::Part { msn, index, .. } => {
            part(&stream, kind, msn, index, &headers, format!("{epoch}-{track}-{msn}.{index}")).await
        }
        TrackFile::Segment { msn, .. } => segment(stream, kind, msn, &headers, format!("{epoch}-{track}-{msn}")).await,
    }
}

/// A strong validator: names are unique per stream epoch and never change content.
fn immutable(
    stream: &LiveStream,
    headers: &HeaderMap,
    etag: String,
    content_type: &'static str,
    body: Bytes,
) -> Response {
    let etag = format!("\"{etag}\"");
    if not_modified(headers, &etag) {
        let mut r = respond(StatusCode::NOT_MODIFIED, content_type, IMMUTABLE, Body::empty());
        set_header(&mut r, header::ETAG, &etag);
        return r;
    }
    stream.stats().bytes_out.fetch_add(body.len() as u64, Ordering::Relaxed);
    let mut r = respond(StatusCode::OK, content_type, IMMUTABLE, Body::from(body));
    set_header(&mut r, header::ETAG, &etag);
    r
}

async fn media_playlist(app: &AppState, stream: &LiveStream, kind: TrackKind, query: &str) -> Response {
    let directives = match hls::parse_directives(query) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    stream.stats().playlist_requests.fetch_add(1, Ordering::Relaxed);
    let blocking = directives.msn.is_some();
    if blocking {
        stream.stats().blocked_requests.fetch_add(1, Ordering::Relaxed);
        let timeout = hls::block_timeout(&stream.state(), &stream.config);
        let outcome = stream
            .wait_for(Instant::now() + timeout, |st| {
                let track = st.track(kind)?;
                match hls::readiness(track, &directives, st.ended, &stream.config) {
                    Ok(hls::Readiness::Ready) => Some(Ok(())),
                    Ok(hls::Readiness::Wait) => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .await;
        match outcome {
            Some(Ok(())) => {}
            Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e.to_string()),
            None => {
                stream.stats().blocked_timeouts.fetch_add(1, Ordering::Relaxed);
                return error(StatusCode::SERVICE_UNAVAILABLE, "the requested segment or part did not appear in time");
            }
        }
    }
    let Some(mut body) = stream.media_playlist(kind, directives.skip) else {
        return error(StatusCode::NOT_FOUND, "no such track");
    };
    if !stream.state().ended {
        let reports = app.packagers.rendition_reports(stream);
        if !reports.is_empty() {
            body = [&body[..], reports.as_bytes()].concat().into();
        }
    }
    respond(StatusCode::OK, PLAYLIST, if blocking { "no-cache" } else { SHORT }, Body::from(body))
}

/// A part: served at once when it exists; a part not yet written (the preload hint) is
/// awaited and then served in full; a part that will never exist is a 404.
async fn part(
    stream: &LiveStream,
    kind: TrackKind,
    msn: u64,
    index: u32,
    headers: &HeaderMap,
    etag: String,
) -> Response {
    let timeout = hls::block_timeout(&stream.state(), &stream.config);
    let found = stream
        .wait_for(Instant::now() + timeout, |st| hls::find_part(st, kind, msn, index, &stream.config).decided())
        .await;
    match found {
        Some(Some(bytes)) => immutable(stream, headers, etag, SEGMENT, bytes),
        Some(None) => error(StatusCode::NOT_FOUND, "no such part"),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "the part did not appear in time"),
    }
}

/// A segment. A complete one is sent with its length; the segment being written (or the
/// next one) is sent with chunked transfer encoding, part by part as they arrive (LL-DASH).
async fn segment(stream: Arc<LiveStream>, kind: TrackKind, msn: u64, headers: &HeaderMap, etag: String) -> Response {
    let timeout = hls::block_timeout(&stream.state(), &stream.config);
    let exists = stream.wait_for(Instant::now() + timeout, |st| hls::find_segment(st, kind, msn).decided()).await;
    let complete_size = match exists {
        Some(Some(size)) => size,
        Some(None) => return error(StatusCode::NOT_FOUND, "no such segment"),
        None => return error(StatusCode::SERVICE_UNAVAILABLE, "the segment did not start in time"),
    };
    let quoted = format!("\"{etag}\"");
    if complete_size.is_some() && not_modified(headers, &quoted) {
        return respond(StatusCode::NOT_MODIFIED, SEGMENT, IMMUTABLE, Body::empty());
    }
    let mut response =
        respond(StatusCode::OK, SEGMENT, IMMUTABLE, Body::from_stream(segment_pieces(stream, kind, msn, timeout)));
    set_header(&mut response, header::ETAG, &quoted);
    if let Some(size) = complete_size {
        response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    response
}

/// `styp`, then each part of segment `msn` as it becomes available, until the segment is complete.
fn segment_pieces(
    stream: Arc<LiveStream>,
    kind: TrackKind,
    msn: u64,
    timeout: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::unfold(Some(0usize), move |sent| {
        let stream = stream.clone();
        async move {
            let sent = sent?;
            if sent == 0 {
                return Some((Ok(fmp4::segment_type()), Some(1)));
            }
            let next = stream
                .wait_for(Instant::now() + timeout, |st| hls::next_segment_piece(st, kind, msn, sent - 1).decided())
                .await;
            match next.map(Option::flatten) {
                Some(Some(bytes)) => {
                    stream.stats().bytes_out.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    Some((Ok(bytes), Some(sent + 1)))
                }
                Some(None) => None,
                None => Some((Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "segment stalled")), None)),
            }
        }
    })
}

/// `GET /live/<name>/thumbnail.jpg`: the newest picture of the stream.
fn thumbnail(app: &AppState, name: &str, headers: &HeaderMap) -> Response {
    let Some(thumbnails) = &app.thumbnails else {
        return error(StatusCode::NOT_FOUND, "live thumbnails are off ([thumbnails] enabled = false)");
    };
    let Some(picture) = thumbnails.get(name) else {
        return error(StatusCode::NOT_FOUND, format!("stream {name} has no thumbnail yet"));
    };
    let etag = format!("\"{}-{}\"", picture.segment.0, picture.segment.1);
    let mut response = if not_modified(headers, &etag) {
        respond(StatusCode::NOT_MODIFIED, "image/jpeg", "public, max-age=5", Body::empty())
    } else {
        respond(StatusCode::OK, "image/jpeg", "public, max-age=5", Body::from(picture.jpeg.clone()))
    };
    set_header(&mut response, header::ETAG, &etag);
    set_header(&mut response, header::LAST_MODIFIED, &httpdate(picture.taken));
    response
}
