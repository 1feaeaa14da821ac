//! Carrying a query parameter into every child URL of a playlist or MPD served to one viewer
//! (the analytics session `rs=`, the access session `token=`), so that players need no
//! configuration: the rewriting itself is [`rill_media::manifest`]'s; this module applies it to
//! a response and makes the response private to that viewer.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

/// Playlists and MPDs larger than this are not rewritten.
const MAX_REWRITE: usize = 4 << 20;

/// The response's playlist (or MPD, when `mpd`) with `param` (`key=value`, URL-safe) in every
/// URI; an MPD also gets a `Location` of itself with the parameter when `location` names it
/// (its file name), so players fetch updates with it too.
pub async fn carry_param(response: Response, mpd: bool, param: &str, location: Option<&str>) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REWRITE).await else {
        return crate::http::response::error(StatusCode::INTERNAL_SERVER_ERROR, "playlist too large");
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let rewritten = if mpd {
        let with = rill_media::manifest::mpd_with_param(text, param);
        match location {
            Some(file) => rill_media::manifest::mpd_with_location(&with, &format!("{file}?{param}")),
            None => with,
        }
    } else {
        rill_media::manifest::hls_with_param(text, param)
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    // Per viewer now: no shared cache may keep it (the browser's own caching rules stay).
    let private = private_cache_control(parts.headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()));
    if let Ok(value) = HeaderValue::from_str(&private) {
        parts.headers.insert(header::CACHE_CONTROL, value);
    }
    Response::from_parts(parts, Body::from(rewritten))
}

/// `Cache-Control` for a response made per viewer: `private`, without what only shared caches
/// read, the rest kept (`max-age=0` stays for players that check it).
fn private_cache_control(original: Option<&str>) -> String {
    let kept: Vec<&str> = original
        .unwrap_or("no-cache")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| {
            let name = d.split('=').next().unwrap_or("").to_ascii_lowercase();
            !matches!(name.as_str(), "public" | "private" | "s-maxage" | "proxy-revalidate")
        })
        .collect();
    std::iter::once("private").chain(kept).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn per_viewer_responses_stay_out_of_shared_caches() {
        assert_eq!(super::private_cache_control(Some("public, max-age=0, s-maxage=1")), "private, max-age=0");
        assert_eq!(super::private_cache_control(None), "private, no-cache");
    }
}
