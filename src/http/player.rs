//! The viewer pages: `GET /play/<name>` (live), `GET /watch/<video-id>` (VOD) and their assets
//! under `/player/`, embedded in the binary.
//!
//! The files come from `web-player/dist/`, built by `scripts/web-player.sh` (hls.js and dash.js
//! at the versions pinned by `web-player/package-lock.json`, plus `web-player/src/*`). The page
//! takes the stream name from its own address and plays `/live/<name>/index.m3u8` (LL-HLS) or
//! `/live/<name>/manifest.mpd` (DASH). Assets are revalidated on every load (`no-cache` with an
//! `ETag`), so an upgraded binary never mixes old and new scripts in a browser cache.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rill_media::path::is_valid_stream_name;
use std::sync::OnceLock;

macro_rules! dist {
    ($file:literal) => {
        // `web-player/dist/`, or placeholders staged by build.rs when it is not built.
        include_bytes!(concat!(env!("RILL_PLAYER_DIST"), "/", $file))
    };
}

/// One embedded file and its lazily computed entity tag.
struct Asset {
    body: &'static [u8],
    content_type: &'static str,
    etag: OnceLock<HeaderValue>,
}

impl Asset {
    const fn new(body: &'static [u8], content_type: &'static str) -> Asset {
        Asset { body, content_type, etag: OnceLock::new() }
    }

    fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            // FNV-1a 64: stable for the life of the binary, which is all an ETag needs.
            let hash =
                self.body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
            HeaderValue::from_str(&format!("\"{hash:016x}\"")).expect("hex is a valid header value")
        })
    }

    fn respond(&self, request: &HeaderMap) -> Response {
        let etag = self.etag();
        let fresh = request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/").as_bytes() == etag.as_bytes())
        });
        let headers = [
            (header::CONTENT_TYPE, HeaderValue::from_static(self.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag.clone()),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ];
        if fresh {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (headers, self.body).into_response()
        }
    }
}

const JS: &str = "text/javascript; charset=utf-8";

static PAGE: Asset = Asset::new(dist!("play.html"), "text/html; charset=utf-8");
static HLS_JS: Asset = Asset::new(dist!("hls.min.js"), JS);
static DASH_JS: Asset = Asset::new(dist!("dash.all.min.js"), JS);
static COMMON_JS: Asset = Asset::new(dist!("common.js"), JS);
static PLAY_JS: Asset = Asset::new(dist!("play.js"), JS);
static PLAY_CSS: Asset = Asset::new(dist!("play.css"), "text/css; charset=utf-8");
static WATCH_PAGE: Asset = Asset::new(dist!("watch.html"), "text/html; charset=utf-8");
static WATCH_JS: Asset = Asset::new(dist!("watch.js"), JS);
static WEBRTC_JS: Asset = Asset::new(dist!("webrtc.js"), JS);
static PUBLISH_PAGE: Asset = Asset::new(dist!("publish.html"), "text/html; charset=utf-8");
static PUBLISH_JS: Asset = Asset::new(dist!("publish.js"), JS);
static UPLOAD_PAGE: Asset = Asset::new(dist!("upload.html"), "text/html; charset=utf-8");
static UPLOAD_JS: Asset = Asset::new(dist!("upload.js"), JS);
static TUS_JS: Asset = Asset::new(dist!("tus.min.js"), JS);

/// `GET /play/{name}` (the live page), `GET /watch/{video-id}` (the VOD page), `GET /publish`,
/// `GET /upload` (a tus upload with tus-js-client) and `GET /player/{file}` (their scripts and
/// style sheet).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/play/{name}", get(page))
        .route("/watch/{id}", get(watch_page))
        .route("/publish", get(|headers: HeaderMap| async move { PUBLISH_PAGE.respond(&headers) }))
        .route("/upload", get(|headers: HeaderMap| async move { UPLOAD_PAGE.respond(&headers) }))
        .route("/player/{file}", get(asset))
}

async fn watch_page(Path(id): Path<String>, headers: HeaderMap) -> Response {
    if rill_vod::VideoId::parse(&id).is_none() {
        return (StatusCode::NOT_FOUND, "not a video id\n").into_response();
    }
    WATCH_PAGE.respond(&headers)
}

async fn page(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if !is_valid_stream_name(&name) {
        return (StatusCode::BAD_REQUEST, "invalid stream name (allowed: [A-Za-z0-9_-]{1,64})\n").into_response();
    }
    PAGE.respond(&headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let asset = match file.as_str() {
        "hls.min.js" => &HLS_JS,
        "dash.all.min.js" => &DASH_JS,
        "common.js" => &COMMON_JS,
        "play.js" => &PLAY_JS,
        "play.css" => &PLAY_CSS,
        "watch.js" => &WATCH_JS,
        "webrtc.js" => &WEBRTC_JS,
        "publish.js" => &PUBLISH_JS,
        "upload.js" => &UPLOAD_JS,
        "tus.min.js" => &TUS_JS,
        _ => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    asset.respond(&headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// Serves the router on a local port and returns the raw HTTP/1.1 response to `request`.
    fn exchange(request: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move { axum::serve(listener, router::<()>()).await });
        let request = request.to_owned();
        let client = move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            String::from_utf8_lossy(&out).into_owned()
        };
        rt.block_on(async { tokio::task::spawn_blocking(client).await }).unwrap()
    }

    fn get(path: &str, extra: &str) -> String {
        exchange(&format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n"))
    }

    #[test]
    fn page_and_assets() {
        let page = get("/play/cam_1-A", "");
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("content-type: text/html; charset=utf-8"), "{page}");
        assert!(page.contains("/player/play.js"));
        let upload = get("/upload", "");
        assert!(upload.starts_with("HTTP/1.1 200") && upload.contains("/player/tus.min.js"), "{upload:.300}");
        for (file, ty) in [
            ("hls.min.js", JS),
            ("dash.all.min.js", JS),
            ("common.js", JS),
            ("play.js", JS),
            ("play.css", "text/css"),
            ("upload.js", JS),
            ("tus.min.js", JS),
        ] {
            let r = get(&format!("/player/{file}"), "");
            assert!(r.starts_with("HTTP/1.1 200"), "{file}: {r:.200}");
            assert!(r.contains(&format!("content-type: {ty}")), "{file}: {r:.300}");
            assert!(r.contains("cache-control: no-cache"), "{file}");
        }
    }

    #[test]
    fn refusals() {
        assert!(get("/play/a.b", "").starts_with("HTTP/1.1 400"));
        assert!(get(&format!("/play/{}", "a".repeat(65)), "").starts_with("HTTP/1.1 400"));
        assert!(get("/play/..%2Fx", "").starts_with("HTTP/1.1 400"));
        assert!(get("/player/play.html", "").starts_with("HTTP/1.1 404"));
        assert!(get("/player/..%2FCargo.toml", "").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn revalidation() {
        let etag = PLAY_JS.etag().to_str().unwrap().to_owned();
        let r = get("/player/play.js", &format!("If-None-Match: {etag}\r\n"));
        assert!(r.starts_with("HTTP/1.1 304"), "{r}");
        assert!(get("/player/play.js", "If-None-Match: \"other\"\r\n").starts_with("HTTP/1.1 200"));
    }
}
