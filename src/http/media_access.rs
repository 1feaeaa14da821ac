//! The access decision over LL-HLS, DASH and live thumbnails (`/live/<name>/…`) and over the
//! catalog's videos (`/vod/<id>/…`: HLS, DASH, thumbnails, downloads): a layer that asks
//! [`crate::access::AccessControl`] for every request, with the token from `?token=` (or
//! `Authorization: Bearer`). A viewer let in with a play token on a playlist or MPD gets a
//! session token, carried into every child URL of that response (and the MPD's `Location`) by
//! [`crate::http::carry`], so players need no configuration: later requests carry the session
//! token, which stays good while the viewer keeps fetching. Public streams pass untouched.

use crate::http::listener::PeerAddr;
use crate::http::auth::is_admin;
use crate::http::response::{access_denied, bearer, error};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rill_media::access::{token_from_query, Gate, Playback, Protocol, Request as AccessRequest, Resource, Via};
use rill_vod::catalog::Visibility;
use rill_vod::VideoId;
use std::sync::Arc;

/// What a `/live/<name>/…` or `/vod/<id>/…` path asks for: the stream or video, and whether it
/// is a playlist or an MPD.
#[derive(Debug, PartialEq, Eq)]
struct MediaTarget<'a> {
    /// A stream's name, or a video's id with `video`.
    name: &'a str,
    video: bool,
    /// The file name of a manifest (`index.m3u8`, `media.m3u8`, `manifest.mpd`).
    manifest: Option<&'a str>,
    mpd: bool,
}

fn media_target(path: &str) -> Option<MediaTarget<'_>> {
    let (rest, video) = match path.strip_prefix("/live/") {
        Some(rest) => (rest, false),
        None => (path.strip_prefix("/vod/")?, true),
    };
    let mut parts = rest.split('/');
    let name = parts.next()?;
    let file = parts.next_back()?;
    let mpd = file.ends_with(".mpd");
    let manifest = (mpd || file.ends_with(".m3u8")).then_some(file);
    Some(MediaTarget { name, video, manifest, mpd })
}

/// The layer over `/live/<name>/…` and `/vod/<id>/…` (HTTP-FLV's `/live/<name>.flv` asks in
/// its handler). A private video plays with a play token for it (or the admin token); to
/// anyone without one it does not exist (404), as before tokens.
pub async fn guard_media(
    State(app): State<Arc<AppState>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let Some(target) = media_target(&path).filter(|_| request.method() != Method::OPTIONS) else {
        return next.run(request).await;
    };
    let query = request.uri().query().unwrap_or("");
    let token = token_from_query(query).or_else(|| bearer(request.headers())).map(str::to_owned);
    let decided = if target.video {
        let Some(playback) = video_playback(&app, target.name).await else {
            // Unknown or unreadable: the handler answers (404, 503); so does the admin.
            return next.run(request).await;
        };
        if playback == Playback::Public || is_admin(&app, request.headers()) {
            return next.run(request).await;
        }
        match app.access.decide_video(Protocol::Vod, target.name, playback, token.as_deref(), Some(peer.ip())) {
            Err(denied) if denied.is_missing() => {
                return error(StatusCode::NOT_FOUND, format!("video {} does not exist", target.name))
            }
            decided => decided,
        }
    } else {
        let protocol = if target.mpd { Protocol::Dash } else { Protocol::Hls };
        app.access.decide(&AccessRequest::play(protocol, target.name, token.as_deref(), Some(peer.ip())))
    };
    let grant = match decided {
        Ok(grant) => grant,
        Err(denied) => return access_denied(&denied),
    };
    let resource = if target.video { Resource::Video(target.name) } else { Resource::Stream(target.name) };
    let session = match (&grant.via, target.manifest) {
        (Via::Token(claims), Some(_)) if claims.sid.is_some() => token,
        (Via::Token(_), Some(_)) => app.access.open_session(&grant, resource),
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

/// Who may watch video `id`: private videos need a token. `None` when there is no such video
/// (or the catalog cannot say).
async fn video_playback(app: &AppState, id: &str) -> Option<Playback> {
    let index = app.library.index(VideoId::parse(id)?).await.ok()??;
    Some(match index.video.visibility {
        Visibility::Private => Playback::Token,
        Visibility::Public | Visibility::Unlisted => Playback::Public,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_targets() {
        let t = |path| media_target(path);
        assert_eq!(
            t("/live/cam/index.m3u8"),
            Some(MediaTarget { name: "cam", video: false, manifest: Some("index.m3u8"), mpd: false })
        );
        assert!(t("/live/cam/manifest.mpd").unwrap().mpd);
        assert_eq!(t("/live/cam/720p/video/media.m3u8").unwrap().manifest, Some("media.m3u8"));
        assert_eq!(
            t("/live/cam/video/7-3.1.m4s"),
            Some(MediaTarget { name: "cam", video: false, manifest: None, mpd: false })
        );
        assert_eq!(t("/live/cam/thumbnail.jpg").unwrap().name, "cam");
        assert_eq!(t("/live/cam.flv"), None);
        assert_eq!(
            t("/vod/x/index.m3u8"),
            Some(MediaTarget { name: "x", video: true, manifest: Some("index.m3u8"), mpd: false })
        );
        assert_eq!(t("/vod/x/video/3.m4s").unwrap().manifest, None);
        assert_eq!(t("/watch/x"), None);
    }
}
