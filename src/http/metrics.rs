//! `GET /metrics`: the Prometheus text exposition, each subsystem writing its own metrics
//! (Bus, ingest, egress, WebRTC, recorder, ladders, cameras) plus those of the HTTP surfaces.

use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use rill_media::metrics::{count, Exposition, Kind};
use std::sync::Arc;

pub async fn handler(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render(&app))
}

/// Protocols listed in `rill_publishers` / `rill_viewers` even when none is connected.
const PUBLISHER_PROTOCOLS: &[&str] = &["rtmp", "rtmps", "srt", "rtsp"];
const VIEWER_PROTOCOLS: &[&str] = &["rtmp", "http-flv", "srt"];

pub fn render(app: &AppState) -> String {
    let mut out = Exposition::new();
    app.bus.write_metrics(&mut out, PUBLISHER_PROTOCOLS, VIEWER_PROTOCOLS);
    app.rtmp_stats.write_metrics(&mut out);
    app.srt_stats.write_metrics(&mut out);
    app.relay_stats.write_metrics(&mut out);
    app.packagers.stats.write_metrics(&mut out);
    app.webrtc.write_metrics(&mut out);
    app.recorder.stats.write_metrics(&mut out);
    app.transcoding.write_metrics(&mut out);
    app.sources.write_metrics(&mut out);
    app.audience.service.write_metrics(&mut out);
    app.access.write_metrics(&mut out);
    if let Some(thumbnails) = &app.thumbnails {
        let help = "Live thumbnails made, and attempts that failed.";
        let name = "rill_live_thumbnails_total";
        out.labelled(name, Kind::Counter, help, &[("outcome", "made")], count(&thumbnails.made));
        out.labelled(name, Kind::Counter, help, &[("outcome", "failed")], count(&thumbnails.failed));
    }
    let http = &app.http_stats;
    out.sample(
        "rill_vod_requests_total",
        Kind::Counter,
        "VOD manifest and segment requests served.",
        count(&http.vod_requests),
    );
    out.sample("rill_vod_bytes_out_total", Kind::Counter, "VOD segment bytes sent.", count(&http.vod_bytes_out));
    out.labelled(
        "rill_auth_failures_total",
        Kind::Counter,
        "Refused credentials by kind.",
        &[("kind", "admin_token")],
        count(&http.api_auth_failures),
    );
    out.sample(
        "rill_uptime_seconds",
        Kind::Gauge,
        "Seconds since the server started.",
        app.started.elapsed().as_secs_f64().floor(),
    );
    out.render()
}
