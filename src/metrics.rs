//! `GET /metrics`: Prometheus text exposition of the Bus, ingest and egress counters.

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub async fn handler(State(app): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render(&app))
}

fn render(app: &AppState) -> String {
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let streams = app.bus.snapshot();
    let live = streams.iter().filter(|s| s.publisher.is_some()).count();
    let mut publishers: BTreeMap<&str, usize> = BTreeMap::new();
    let mut viewers: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &streams {
        if let Some(p) = &s.publisher {
            *publishers.entry(p.protocol).or_default() += 1;
        }
        for (protocol, n) in &s.viewers {
            *viewers.entry(protocol).or_default() += n;
        }
    }
    for protocol in ["rtmp", "http-flv"] {
        viewers.entry(protocol).or_default();
    }
    for protocol in ["rtmp", "rtmps", "srt", "rtsp"] {
        publishers.entry(protocol).or_default();
    }
    viewers.entry("srt").or_default();
    let labelled = |m: &BTreeMap<&str, usize>| -> Vec<(String, f64)> {
        m.iter().map(|(p, n)| (format!("{{protocol=\"{p}\"}}"), *n as f64)).collect()
    };
    let bus = app.bus.stats();
    let rtmp = &app.rtmp_stats;
    let relay = &app.relay_stats;
    metric(
        "rill_streams",
        "gauge",
        "Streams on the Bus by state.",
        &[("{state=\"live\"}", live as f64), ("{state=\"reconnecting\"}", (streams.len() - live) as f64)],
    );
    let p = labelled(&publishers);
    metric(
        "rill_publishers",
        "gauge",
        "Connected publishers by protocol.",
        &p.iter().map(|(l, v)| (l.as_str(), *v)).collect::<Vec<_>>(),
    );
    let v = labelled(&viewers);
    metric(
        "rill_viewers",
        "gauge",
        "Connected viewers by protocol.",
        &v.iter().map(|(l, v)| (l.as_str(), *v)).collect::<Vec<_>>(),
    );
    let packager = &app.packagers.stats;
    metric(
        "rill_packaged_streams",
        "gauge",
        "Streams packaged for LL-HLS and DASH.",
        &[("", packager.streams.load(Relaxed) as f64)],
    );
    metric(
        "rill_cmaf_parts_total",
        "counter",
        "CMAF parts written (all tracks).",
        &[("", packager.parts.load(Relaxed) as f64)],
    );
    metric(
        "rill_cmaf_segments_total",
        "counter",
        "CMAF segments started (all tracks).",
        &[("", packager.segments.load(Relaxed) as f64)],
    );
    metric(
        "rill_hls_dash_playlist_requests_total",
        "counter",
        "Playlist and MPD requests.",
        &[("", packager.playlist_requests.load(Relaxed) as f64)],
    );
    metric(
        "rill_hls_blocking_requests_total",
        "counter",
        "Blocking playlist reloads, and those that timed out (503).",
        &[
            ("{outcome=\"all\"}", packager.blocked_requests.load(Relaxed) as f64),
            ("{outcome=\"timeout\"}", packager.blocked_timeouts.load(Relaxed) as f64),
        ],
    );
    metric(
        "rill_hls_dash_bytes_out_total",
        "counter",
        "Segment, part and init bytes sent to HLS/DASH players.",
        &[("", packager.bytes_out.load(Relaxed) as f64)],
    );
    webrtc_metrics(app, &mut metric);
    let transcoding = &app.transcoding;
    metric("rill_transcode_ladders", "gauge", "Live ABR ladders running now.", &[("", transcoding.running() as f64)]);
    metric(
        "rill_transcode_ladders_total",
        "counter",
        "Ladders started, and those that failed (GStreamer error, unsupported input, or every rung dropped).",
        &[
            ("{outcome=\"started\"}", transcoding.stats.ladders_started.load(Relaxed) as f64),
            ("{outcome=\"failed\"}", transcoding.stats.ladders_failed.load(Relaxed) as f64),
        ],
    );
    let rungs: Vec<(String, f64)> =
        transcoding.rung_states().into_iter().map(|(state, n)| (format!("{{state=\"{state}\"}}"), n as f64)).collect();
    metric(
        "rill_transcode_renditions",
        "gauge",
        "Renditions of the ladders kept (running or ended), by state: dropped_overload means the machine could not keep real time.",
        &rungs.iter().map(|(l, v)| (l.as_str(), *v)).collect::<Vec<_>>(),
    );
    if let Some(thumbnails) = &app.thumbnails {
        metric(
            "rill_live_thumbnails_total",
            "counter",
            "Live thumbnails made, and attempts that failed.",
            &[
                ("{outcome=\"made\"}", thumbnails.made.load(Relaxed) as f64),
                ("{outcome=\"failed\"}", thumbnails.failed.load(Relaxed) as f64),
            ],
        );
    }
    let recorder = &app.recorder.stats;
    metric(
        "rill_recordings_active",
        "gauge",
        "Live streams being recorded now.",
        &[("", recorder.active.load(Relaxed) as f64)],
    );
    metric(
        "rill_recordings_total",
        "counter",
        "Recordings by outcome: started, or failed (storage or catalog error; the live stream goes on).",
        &[
            ("{outcome=\"started\"}", recorder.started.load(Relaxed) as f64),
            ("{outcome=\"failed\"}", recorder.failed.load(Relaxed) as f64),
        ],
    );
    metric(
        "rill_recording_bytes_written_total",
        "counter",
        "Bytes written to recordings.",
        &[("", recorder.bytes_written.load(Relaxed) as f64)],
    );
    metric(
        "rill_recording_segments_total",
        "counter",
        "Recorded segments indexed in the catalog.",
        &[("", recorder.segments_written.load(Relaxed) as f64)],
    );
    metric(
        "rill_recording_frames_lost_total",
        "counter",
        "Frames recordings lost (buffer full while storage or the catalog stalled, or behind the live edge).",
        &[("", recorder.frames_lost.load(Relaxed) as f64)],
    );
    metric(
        "rill_recording_spilled_bytes_total",
        "counter",
        "Bytes recordings spilled to disk while their writer waited.",
        &[("", recorder.spilled_bytes.load(Relaxed) as f64)],
    );
    metric(
        "rill_vod_requests_total",
        "counter",
        "VOD manifest and segment requests served.",
        &[("", app.vod_requests.load(Relaxed) as f64)],
    );
    metric(
        "rill_vod_bytes_out_total",
        "counter",
        "VOD segment bytes sent.",
        &[("", app.vod_bytes_out.load(Relaxed) as f64)],
    );
    metric(
        "rill_ingest_frames_total",
        "counter",
        "Frames pushed onto the Bus.",
        &[("", bus.frames_in.load(Relaxed) as f64)],
    );
    metric(
        "rill_ingest_payload_bytes_total",
        "counter",
        "Payload bytes pushed onto the Bus.",
        &[("", bus.bytes_in.load(Relaxed) as f64)],
    );
    metric(
        "rill_bytes_received_total",
        "counter",
        "Bytes received by protocol.",
        &[
            ("{protocol=\"rtmp\"}", rtmp.bytes_in.load(Relaxed) as f64),
            ("{protocol=\"srt\"}", app.srt_stats.bytes_in.load(Relaxed) as f64),
        ],
    );
    metric(
        "rill_bytes_sent_total",
        "counter",
        "Bytes sent by protocol.",
        &[
            ("{protocol=\"rtmp\"}", rtmp.bytes_out.load(Relaxed) as f64),
            ("{protocol=\"http-flv\"}", relay.http_flv_bytes_out.load(Relaxed) as f64),
            ("{protocol=\"srt\"}", relay.srt_play_bytes_out.load(Relaxed) as f64),
        ],
    );
    metric(
        "rill_slow_viewer_frames_dropped_total",
        "counter",
        "Frames slow viewers skipped to catch up at a keyframe.",
        &[("", bus.frames_skipped.load(Relaxed) as f64)],
    );
    metric(
        "rill_slow_viewer_skips_total",
        "counter",
        "Times a slow viewer skipped to a keyframe.",
        &[("", bus.subscriber_skips.load(Relaxed) as f64)],
    );
    metric(
        "rill_slow_viewer_disconnects_total",
        "counter",
        "Viewers disconnected for staying behind.",
        &[("", bus.slow_disconnects.load(Relaxed) as f64)],
    );
    metric(
        "rill_viewers_started_total",
        "counter",
        "Viewers that started playing.",
        &[("", relay.viewers_total.load(Relaxed) as f64)],
    );
    metric(
        "rill_auth_failures_total",
        "counter",
        "Refused credentials by kind.",
        &[
            ("{kind=\"publish_key\"}", rtmp.auth_failures.load(Relaxed) as f64),
            ("{kind=\"admin_token\"}", app.api_auth_failures.load(Relaxed) as f64),
        ],
    );
    metric(
        "rill_connections_total",
        "counter",
        "Accepted connections by protocol.",
        &[("{protocol=\"rtmp\"}", rtmp.connections_total.load(Relaxed) as f64)],
    );
    metric(
        "rill_connections_open",
        "gauge",
        "Open connections by protocol.",
        &[("{protocol=\"rtmp\"}", rtmp.connections_open.load(Relaxed) as f64)],
    );
    metric(
        "rill_protocol_errors_total",
        "counter",
        "Connections closed or messages dropped for protocol errors.",
        &[("{protocol=\"rtmp\"}", rtmp.protocol_errors.load(Relaxed) as f64)],
    );
    metric(
        "rill_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &[("", app.started.elapsed().as_secs_f64().floor())],
    );
    let srt = &app.srt_stats;
    metric(
        "rill_srt_connections_total",
        "counter",
        "SRT callers (publishers and readers), refused ones included.",
        &[("", srt.connections_total.load(Relaxed) as f64)],
    );
    metric(
        "rill_srt_refused_total",
        "counter",
        "SRT callers refused, by reason.",
        &[
            ("{reason=\"streamid\"}", srt.refused_streamid.load(Relaxed) as f64),
            ("{reason=\"auth\"}", srt.refused_auth.load(Relaxed) as f64),
            ("{reason=\"passphrase\"}", srt.refused_passphrase.load(Relaxed) as f64),
            ("{reason=\"other\"}", srt.refused_other.load(Relaxed) as f64),
        ],
    );
    metric(
        "rill_srt_ts_continuity_errors_total",
        "counter",
        "MPEG-TS continuity counter errors in SRT publishers' streams (lost or reordered packets).",
        &[("", srt.ts_continuity_errors.load(Relaxed) as f64)],
    );
    metric(
        "rill_srt_ts_errors_total",
        "counter",
        "Malformed MPEG-TS/PES/ADTS data dropped from SRT publishers' streams.",
        &[("", srt.ts_errors.load(Relaxed) as f64)],
    );
    crate::sources::write_metrics(app, &mut out);
    out
}

/// WHIP/WHEP sessions and their RTCP feedback (`rill_webrtc_*`).
fn webrtc_metrics(app: &AppState, metric: &mut impl FnMut(&str, &str, &str, &[(&str, f64)])) {
    let w = app.webrtc.stats();
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed) as f64;
    metric(
        "rill_webrtc_sessions",
        "gauge",
        "WebRTC sessions (connecting or connected) by kind.",
        &[("{kind=\"whip\"}", n(&w.whip_sessions)), ("{kind=\"whep\"}", n(&w.whep_sessions))],
    );
    metric(
        "rill_webrtc_sessions_total",
        "counter",
        "WebRTC sessions started, and those reclaimed because ICE/DTLS did not complete in time.",
        &[("{outcome=\"started\"}", n(&w.sessions_started)), ("{outcome=\"timed_out\"}", n(&w.sessions_timed_out))],
    );
    metric(
        "rill_webrtc_datagrams_total",
        "counter",
        "Datagrams on the WebRTC media port: received, sent, unroutable (no session: unknown ufrag or address, garbage), dropped (session queue full).",
        &[
            ("{direction=\"in\"}", n(&w.datagrams_in)),
            ("{direction=\"out\"}", n(&w.datagrams_out)),
            ("{direction=\"unroutable\"}", n(&w.datagrams_unroutable)),
            ("{direction=\"dropped\"}", n(&w.datagrams_dropped)),
        ],
    );
    metric(
        "rill_webrtc_bytes_total",
        "counter",
        "Bytes on the WebRTC media port.",
        &[("{direction=\"in\"}", n(&w.bytes_in)), ("{direction=\"out\"}", n(&w.bytes_out))],
    );
    metric(
        "rill_webrtc_nacks_received_total",
        "counter",
        "NACKed packets viewers asked for (answered from each track's retransmission history).",
        &[("", n(&w.nacks_received))],
    );
    metric(
        "rill_webrtc_plis_total",
        "counter",
        "Keyframe requests (PLI/FIR) received from viewers and sent to WHIP publishers.",
        &[("{direction=\"received\"}", n(&w.plis_received)), ("{direction=\"sent\"}", n(&w.plis_sent))],
    );
    metric(
        "rill_webrtc_packets_lost_total",
        "counter",
        "RTP packets viewers reported lost (RTCP receiver reports).",
        &[("", n(&w.packets_lost))],
    );
    metric(
        "rill_webrtc_ingest_frames_dropped_total",
        "counter",
        "WHIP video frames dropped by the depacketizer (loss not repaired in time, malformed).",
        &[("", n(&w.ingest_frames_dropped))],
    );
    let rtts: Vec<f64> = app.webrtc.sessions().iter().filter_map(|s| s.rtt_ms).collect();
    if !rtts.is_empty() {
        let mean = rtts.iter().sum::<f64>() / rtts.len() as f64;
        metric(
            "rill_webrtc_rtt_ms",
            "gauge",
            "Mean round-trip time of WHEP sessions (RTCP receiver reports), where known.",
            &[("", mean)],
        );
    }
}
