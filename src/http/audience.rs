//! Viewers of LL-HLS, DASH and VOD, counted from their requests: a layer over those routes
//! that observes every playlist, MPD, init, segment and part request for its viewer's
//! session, keyed by
//! 1. the CMCD session id (`CMCD=` query argument or `CMCD-*` headers, parsed in request
//!    mode), else
//! 2. the session parameter `rs=` that Rill carried into the URLs of the playlists it served
//!    this viewer, else
//! 3. for a playlist or MPD: a new session, whose id is carried into every child URL of the
//!    response (`[analytics] session_param`), else
//! 4. the viewer's daily hash and the content (a player that fetched a segment cold).
//!
//! The layer also answers CORS preflights for the `CMCD-*` headers and adds `CMSD-Static:
//! ht=…` to a live response that was held (a blocking playlist reload or a part not yet
//! written). CMCD never enters a cache key: no response varies with it.

use crate::audience::{Audience, VISITOR_COOKIE};
use crate::http::listener::PeerAddr;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rill_analytics::cmcd::{self, Cmcd};
use rill_analytics::observe;
use rill_analytics::session::{Content, Protocol, Report};
use rill_analytics::store::RawEvent;
use std::sync::Arc;
use std::time::Instant;

/// The query parameter that carries a server-issued session id.
pub const SESSION_PARAM: &str = "rs";
/// A live response held at least this long says so in `CMSD-Static`.
const HELD_REPORTED_MS: u128 = 5;

/// What a media request fetches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaTarget {
    pub content: observe::ContentRef,
    /// A live ladder rung (`None`: the source).
    pub rendition: Option<String>,
    pub file: FileKind,
    /// A VOD video segment's sequence number (for the retention curve).
    pub video_segment: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Playlist,
    Mpd,
    Init,
    Media,
}

impl MediaTarget {
    /// `/live/<name>/…` or `/vod/<id>/…` (thumbnails, `/time` and anything else: `None`).
    pub fn parse(path: &str) -> Option<MediaTarget> {
        let mut parts = path.trim_start_matches('/').split('/');
        let (root, id) = (parts.next()?, parts.next()?);
        let rest: Vec<&str> = parts.collect();
        let file = *rest.last()?;
        let kind = if file.ends_with(".m3u8") {
            FileKind::Playlist
        } else if file.ends_with(".mpd") {
            FileKind::Mpd
        } else if file.ends_with(".mp4") && file.contains("init") {
            FileKind::Init
        } else if file.ends_with(".m4s") {
            FileKind::Media
        } else {
            return None;
        };
        let content = observe::ContentRef::parse(&format!("{}/{id}", if root == "vod" { "vod" } else { root }))?;
        let rendition = match (&content, rest.len()) {
            (observe::ContentRef::Live(_), 3) => Some(rest[0].to_owned()),
            _ => None,
        };
        let video_segment = match (&content, rest.as_slice()) {
            (observe::ContentRef::Video(_), ["video", file]) => file.strip_suffix(".m4s").and_then(|n| n.parse().ok()),
            _ => None,
        };
        (rest.len() <= 3).then_some(MediaTarget { content, rendition, file: kind, video_segment })
    }

    fn is_manifest(&self) -> bool {
        matches!(self.file, FileKind::Playlist | FileKind::Mpd)
    }

    /// The protocol the fetched file shows: only a playlist or an MPD says (VOD segments
    /// are the same files for both).
    fn protocol(&self) -> Option<Protocol> {
        match self.file {
            FileKind::Mpd => Some(Protocol::Dash),
            FileKind::Playlist => Some(Protocol::Hls),
            _ => None,
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|p| p.split_once('=')).find_map(|(k, v)| (k == name).then_some(v))
}

fn valid_session_id(id: &str) -> bool {
    (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A new session id (128 random bits).
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: a time-based id still keeps sessions apart.
        let t = rill_analytics::service::now_ms() as u128;
        bytes = (t ^ (std::process::id() as u128) << 64).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The request-mode CMCD of a request, and its raw text (for the raw report).
fn request_cmcd(query: &str, headers: &HeaderMap) -> Option<(Result<Cmcd, cmcd::CmcdError>, String)> {
    if let Some(parsed) = cmcd::from_query(query) {
        let raw = query_param(query, cmcd::QUERY_ARG).unwrap_or_default().to_owned();
        return Some((parsed, raw));
    }
    let shards: Vec<(&str, &[u8])> =
        cmcd::HEADERS.iter().filter_map(|name| headers.get(*name).map(|v| (*name, v.as_bytes()))).collect();
    let parsed = cmcd::from_headers(shards.iter().copied())?;
    let raw = shards.iter().map(|(_, v)| String::from_utf8_lossy(v)).collect::<Vec<_>>().join(",");
    Some((parsed, raw))
}

/// The preflight answer for media routes: GET with CMCD headers and ranges, from anywhere.
pub fn preflight() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, POST, OPTIONS"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session, Range, Content-Type"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

/// The content a target names, resolved (a video that does not exist: `None`).
async fn content_of(audience: &Audience, target: &observe::ContentRef) -> Option<Content> {
    match target {
        observe::ContentRef::Live(name) => Some(audience.live_content(name)),
        observe::ContentRef::Video(id) => audience.video_content(id).await,
    }
}

/// The layer over `/live/…` and `/vod/…`.
pub async fn observe_media(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::OPTIONS {
        return preflight();
    }
    let audience = app.audience.clone();
    let target = MediaTarget::parse(request.uri().path());
    let (Some(target), true) = (target, audience.enabled) else {
        return next.run(request).await;
    };
    let query = request.uri().query().unwrap_or("").to_owned();
    let headers = request.headers().clone();
    let cmcd = match request_cmcd(&query, &headers) {
        Some((Ok(c), raw)) => Some((c, raw)),
        Some((Err(_), _)) => {
            audience.service.rejected_line();
            None
        }
        None => None,
    };
    let started = Instant::now();
    // The report is of the moment the request was made (a held request's CMCD tells the
    // player's state when it asked, not when it was answered).
    let now = rill_analytics::service::now_ms();
    let mut response = next.run(request).await;
    let held = started.elapsed().as_millis();
    if matches!(target.content, observe::ContentRef::Live(_)) && held >= HELD_REPORTED_MS {
        if let Ok(v) = HeaderValue::from_str(&format!("ht={held}")) {
            response.headers_mut().insert("cmsd-static", v);
        }
    }
    if !(response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED) {
        return response;
    }
    let Some(content) = content_of(&audience, &target.content).await else {
        return response;
    };
    let carried = query_param(&query, SESSION_PARAM).filter(|id| valid_session_id(id));
    let sid = cmcd.as_ref().and_then(|(c, _)| c.sid.clone());
    let user_agent = header_str(&headers, header::USER_AGENT).unwrap_or("");
    let referrer = cookie(&headers, crate::audience::REFERRER_COOKIE).or(header_str(&headers, header::REFERER));
    let host = header_str(&headers, header::HOST);
    let viewer = || audience.viewer(peer.ip(), user_agent, referrer, cookie(&headers, VISITOR_COOKIE), host);
    let anonymous = || {
        let what = match &target.content {
            observe::ContentRef::Live(n) => format!("live/{n}"),
            observe::ContentRef::Video(v) => format!("vod/{v}"),
        };
        format!("a:{}:{what}", viewer().visitor)
    };
    let (mut id, mut carry) = match (sid, carried) {
        (Some(sid), _) => (sid, false),
        (None, Some(rs)) => (rs.to_owned(), true),
        (None, None) if target.is_manifest() && audience.session_param => (new_session_id(), true),
        (None, None) => (anonymous(), false),
    };
    if !audience.admit(&id, peer.ip()) {
        // Over the address's budget of new sessions: served, counted as its one anonymous
        // viewer of this content (which itself needs room).
        (id, carry) = (anonymous(), false);
        if !audience.service.is_tracked(&id) {
            return response;
        }
    }
    let mut report =
        cmcd.as_ref().map_or_else(|| Report { at_ms: now, ..Report::default() }, |(c, _)| observe::report(c, now));
    report.at_ms = now;
    report.media = target.file == FileKind::Media && response.status() == StatusCode::OK;
    // A body of known size is counted now; a streamed one (a part being produced) as it ends.
    let known_size = header_str(response.headers(), header::CONTENT_LENGTH)
        .and_then(|l| l.parse().ok())
        .or_else(|| axum::body::HttpBody::size_hint(response.body()).exact());
    report.bytes = if report.media { known_size.unwrap_or(0) } else { 0 };
    let streamed = report.media && known_size.is_none();
    if matches!(target.content, observe::ContentRef::Live(_)) && target.file != FileKind::Mpd {
        report.rendition = Some(target.rendition.clone().unwrap_or_else(|| "source".into()));
    }
    if let (observe::ContentRef::Video(video), Some(sequence), true) =
        (&target.content, target.video_segment, report.media)
    {
        report.media_range_ms = audience.video_segment_range(video, sequence).await;
    }
    report.content = Some(content.clone());
    report.protocol = report.protocol.or(target.protocol());
    let protocol = report.protocol.unwrap_or(Protocol::Hls);
    let raw = cmcd.as_ref().map(|(c, raw)| RawEvent {
        at: now,
        session_id: id.clone(),
        kind: observe::kind(c).to_owned(),
        data: raw.chars().take(cmcd::MAX_LINE).collect(),
    });
    let open = || (protocol, content.clone(), viewer());
    if audience.service.observe([(id.as_str(), report, raw)], &open, false).is_err() {
        // Full: the viewer is served, only not counted (the refusal is counted).
        return response;
    }
    if carry && target.is_manifest() && response.status() == StatusCode::OK {
        response = carry_session(response, &target, &id).await;
    }
    if streamed {
        response = count_streamed(response, ByteCount { service: audience.service.clone(), session: id, bytes: 0 });
    }
    response
}

/// The bytes a streamed body delivered to a session, reported when the body ends (or the
/// viewer goes away mid-way: what was sent still counts).
struct ByteCount {
    service: Arc<rill_analytics::service::Analytics>,
    session: String,
    bytes: u64,
}

impl ByteCount {
    fn add(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
    }
}

impl Drop for ByteCount {
    fn drop(&mut self) {
        self.service.delivered(&self.session, self.bytes);
    }
}

fn count_streamed(response: Response, mut count: ByteCount) -> Response {
    use futures_util::StreamExt;
    let (parts, body) = response.into_parts();
    let counted = body.into_data_stream().map(move |chunk| {
        // A method call moves the whole counter into the closure (a field use would move
        // only the field, and the counter would drop, reporting 0, at once).
        if let Ok(data) = &chunk {
            count.add(data.len());
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(counted))
}

/// The response's playlist or MPD with `rs=<id>` in every URI.
async fn carry_session(response: Response, target: &MediaTarget, id: &str) -> Response {
    let param = format!("{SESSION_PARAM}={id}");
    crate::http::carry::carry_param(response, target.file == FileKind::Mpd, &param, None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use observe::ContentRef;

    #[test]
    fn media_targets() {
        let t = MediaTarget::parse("/live/cam/index.m3u8").unwrap();
        assert_eq!((t.content, t.rendition, t.file), (ContentRef::Live("cam".into()), None, FileKind::Playlist));
        let t = MediaTarget::parse("/live/cam/720p/video/7-3.1.m4s").unwrap();
        assert_eq!((t.rendition.as_deref(), t.file), (Some("720p"), FileKind::Media));
        let t = MediaTarget::parse("/live/cam/video/7-init-1.mp4").unwrap();
        assert_eq!((t.rendition, t.file), (None, FileKind::Init));
        let t = MediaTarget::parse("/vod/abc123/manifest.mpd").unwrap();
        assert_eq!((t.content, t.file), (ContentRef::Video("abc123".into()), FileKind::Mpd));
        let t = MediaTarget::parse("/vod/abc123/video/42.m4s").unwrap();
        assert_eq!((t.file, t.video_segment), (FileKind::Media, Some(42)));
        assert_eq!(MediaTarget::parse("/vod/abc123/audio/42.m4s").unwrap().video_segment, None);
        assert!(MediaTarget::parse("/live/cam/thumbnail.jpg").is_none());
        assert!(MediaTarget::parse("/time").is_none());
        assert!(MediaTarget::parse("/live/../etc/passwd.m3u8").is_none());
    }

    #[test]
    fn cookies_and_params() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; rill_viewer=abcdefgh12; b=2"));
        assert_eq!(cookie(&h, "rill_viewer"), Some("abcdefgh12"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(query_param("_HLS_msn=3&rs=0123456789abcdef", "rs"), Some("0123456789abcdef"));
        assert!(valid_session_id(&new_session_id()));
        assert!(!valid_session_id("short"));
        assert!(!valid_session_id("has space in it"));
    }
}
