//! RTMP play: serves a player that connected to the RTMP port with `play live/<name>` (a token,
//! when the stream needs one, as `play live/<name>?token=…`), once the access decision lets it.

use crate::feed::FlvFeed;
use crate::RelayStats;
use rill_ingest::rtmp::driver::ConnError;
use rill_ingest::rtmp::{PlayRequest, SessionEvent};
use rill_media::access::{self, Gate};
use rill_media::{Bus, BusError, StreamPath};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tracing::{info, warn};

/// How long a player's request waits for an on-demand source to start.
const ON_DEMAND_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one RTMP player until it leaves, the stream ends or the player is too slow.
pub async fn serve(request: PlayRequest, bus: Bus, stats: Arc<RelayStats>, gate: Arc<dyn Gate>) {
    let PlayRequest { app, name, query, protocol, mut conn } = request;
    let token = query.as_deref().and_then(access::token_from_query);
    let decided = gate.decide(&access::Request::play(protocol, &name, token, Some(conn.peer().ip())));
    let subscription = match (StreamPath::live(&name), decided) {
        _ if app != "live" => {
            Err(("NetStream.Play.StreamNotFound", "application not served (use rtmp://HOST/live/<name>)".into()))
        }
        (Err(_), _) => Err(("NetStream.Play.StreamNotFound", "invalid stream name".into())),
        (Ok(_), Err(denied)) => {
            if denied.is_slowed() {
                tokio::time::sleep(access::refusal_delay()).await;
            }
            Err(("NetStream.Play.Failed", format!("access denied: {denied}")))
        }
        (Ok(path), Ok(_)) => {
            // An on-demand source (a camera) starts for its first viewer.
            bus.request(&path, ON_DEMAND_WAIT).await;
            bus.subscribe(&path, "rtmp").map_err(|_| ("NetStream.Play.StreamNotFound", "stream is not live".into()))
        }
    };
    let sub = match subscription {
        Ok(sub) => sub,
        Err((code, description)) => {
            info!(reason = %description, "play refused");
            if conn.session().reject_play(code, &description).is_ok() {
                let _ = conn.flush().await;
            }
            return;
        }
    };
    stats.viewers_total.fetch_add(1, Ordering::Relaxed);
    if conn.session().accept_play().is_err() || conn.flush().await.is_err() {
        return;
    }
    info!("rtmp player started");
    let mut feed = FlvFeed::new(sub);
    let mut tags = Vec::new();
    let disconnected = |e: ConnError| if e.is_disconnect() { Ok("player disconnected") } else { Err(e.to_string()) };
    let outcome: Result<&str, String> = loop {
        tokio::select! {
            batch = feed.next_batch(&mut tags) => match batch {
                Ok(true) => {
                    for tag in tags.drain(..) {
                        conn.session().send_media(&tag);
                    }
                    if let Err(e) = conn.flush().await {
                        break disconnected(e);
                    }
                }
                Ok(false) => break Ok("stream ended"),
                Err(e @ BusError::TooSlow(_)) => {
                    stats.viewers_disconnected_slow.fetch_add(1, Ordering::Relaxed);
                    break Err(e.to_string());
                }
                Err(e) => break Err(e.to_string()),
            },
            read = conn.read() => match read {
                Ok(true) => {
                    let mut closed = false;
                    while let Some(event) = conn.session().poll_event() {
                        closed |= event == SessionEvent::StreamClosed;
                    }
                    if closed {
                        break Ok("player closed the stream");
                    }
                    if conn.session().has_output() {
                        if let Err(e) = conn.flush().await {
                            break disconnected(e);
                        }
                    }
                }
                Ok(false) => break Ok("player disconnected"),
                Err(e) => break disconnected(e),
            },
        }
    };
    match outcome {
        Ok(reason) => info!(reason, "rtmp player stopped"),
        Err(error) => warn!(%error, "rtmp player dropped"),
    }
}
