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
    transcoding_metrics(app, &mut out);
    crate::sources::write_metrics(app, &mut out);
    if let Some(thumbnails) = &app.thumbnails {
        let help = "Live thumbnails made, and attempts that failed.";
        let name = "rill_live_thumbnails_total";
        out.labelled(name, Kind::Counter, help, &[("outcome", "made")], count(&thumbnails.made));
        out.labelled(name, Kind::Counter, help, &[("outcome", "failed")], count(&thumbnails.failed));
    }
    let http = &app.http_stats;
    out.sample("rill_vod_requests_total", Kind::Counter, "VOD manifest and segment requests served.", count(&http.vod_requests));
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

/// The ladders: running now, started and failed, renditions by state.
fn transcoding_metrics(app: &AppState, out: &mut Exposition) {
    let t = &app.transcoding;
    out.sample("rill_transcode_ladders", Kind::Gauge, "Live ABR ladders running now.", t.running() as f64);
    let help = "Ladders started, and those that failed (GStreamer error, unsupported input, or every rung dropped).";
    let total = "rill_transcode_ladders_total";
    out.labelled(total, Kind::Counter, help, &[("outcome", "started")], count(&t.stats.ladders_started));
    out.labelled(total, Kind::Counter, help, &[("outcome", "failed")], count(&t.stats.ladders_failed));
    let help = "Renditions of the ladders kept (running or ended), by state: dropped_overload means the machine could not keep real time.";
    out.declare("rill_transcode_renditions", Kind::Gauge, help);
    for (state, n) in t.rung_states() {
        out.labelled("rill_transcode_renditions", Kind::Gauge, help, &[("state", state)], n as f64);
    }
}
