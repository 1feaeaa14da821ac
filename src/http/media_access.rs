//! The access decision over LL-HLS, DASH and live thumbnails (`/live/<name>/…`): a layer that
//! asks [`crate::access::AccessControl`] for every request, with the token from `?token=` (or
//! `Authorization: Bearer`). A viewer let in with a play token on a playlist or MPD gets a
//! session token, carried into every child URL of that response (and the MPD's `Location`) by
//! [`crate::http::carry`], so players need no configuration: later requests carry the session
//! token, which stays good while the viewer keeps fetching. Public streams pass untouched.

use crate::http::listener::PeerAddr;
use crate::http::response::{access_denied, bearer};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rill_media::access::{token_from_query, Gate, Protocol, Request as AccessRequest, Resource, Via};
use std::sync::Arc;

/// What a `/live/<name>/…` path asks for: the stream, and whether it is a playlist or an MPD.
#[derive(Debug, PartialEq, Eq)]
struct LiveTarget<'a> {
    name: &'a str,
    /// The file name of a manifest (`index.m3u8`, `media.m3u8`, `manifest.mpd`).
    manifest: Option<&'a str>,
    mpd: bool,
}

fn live_target(path: &str) -> Option<LiveTarget<'_>> {
    let mut parts = path.strip_prefix("/live/")?.split('/');
    let name = parts.next()?;
    let file = parts.next_back()?;
    let mpd = file.ends_with(".mpd");
    let manifest = (mpd || file.ends_with(".m3u8")).then_some(file);
    Some(LiveTarget { name, manifest, mpd })
}

/// The layer over `/live/<name>/…` (HTTP-FLV's `/live/<name>.flv` asks in its handler).
pub async fn guard_live(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let Some(target) = live_target(&path).filter(|_| request.method() != Method::OPTIONS) else {
        return next.run(request).await;
    };
    let query = request.uri().query().unwrap_or("");
    let token = token_from_query(query).or_else(|| bearer(request.headers())).map(str::to_owned);
    let protocol = if target.mpd { Protocol::Dash } else { Protocol::Hls };
    let grant = match app.access.decide(&AccessRequest::play(protocol, target.name, token.as_deref(), Some(peer.ip())))
    {
        Ok(grant) => grant,
        Err(denied) => return access_denied(&denied),
    };
    let session = match (&grant.via, target.manifest) {
        (Via::Token(claims), Some(_)) if claims.sid.is_some() => token,
        (Via::Token(_), Some(_)) => app.access.open_session(&grant, Resource::Stream(target.name)),
        _ => None,
    };
    let response = next.run(request).await;
    match session {
        Some(session) if response.status() == StatusCode::OK => {
            let param = format!("token={session}");
            crate::http::carry::carry_param(response, target.mpd, &param, target.manifest).await
        }
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_targets() {
        let t = |path| live_target(path);
        assert_eq!(
            t("/live/cam/index.m3u8"),
            Some(LiveTarget { name: "cam", manifest: Some("index.m3u8"), mpd: false })
        );
        assert!(t("/live/cam/manifest.mpd").unwrap().mpd);
        assert_eq!(t("/live/cam/720p/video/media.m3u8").unwrap().manifest, Some("media.m3u8"));
        assert_eq!(t("/live/cam/video/7-3.1.m4s"), Some(LiveTarget { name: "cam", manifest: None, mpd: false }));
        assert_eq!(t("/live/cam/thumbnail.jpg").unwrap().name, "cam");
        assert_eq!(t("/live/cam.flv"), None);
        assert_eq!(t("/vod/x/index.m3u8"), None);
    }
}
