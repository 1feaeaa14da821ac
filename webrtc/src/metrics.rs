//! WebRTC metrics: WHIP/WHEP sessions, datagrams and bytes on the media port, and the RTCP
//! feedback viewers and publishers sent (NACKs, PLIs, loss, round-trip time).

use crate::driver::WebRtc;
use rill_media::metrics::{count, Exposition, Kind};

impl WebRtc {
    pub fn write_metrics(&self, out: &mut Exposition) {
        let w = self.stats();
        let sessions = "WebRTC sessions (connecting or connected) by kind.";
        out.labelled("rill_webrtc_sessions", Kind::Gauge, sessions, &[("kind", "whip")], count(&w.whip_sessions));
        out.labelled("rill_webrtc_sessions", Kind::Gauge, sessions, &[("kind", "whep")], count(&w.whep_sessions));
        let started = "WebRTC sessions started, and those reclaimed because ICE/DTLS did not complete in time.";
        let total = "rill_webrtc_sessions_total";
        out.labelled(total, Kind::Counter, started, &[("outcome", "started")], count(&w.sessions_started));
        out.labelled(total, Kind::Counter, started, &[("outcome", "timed_out")], count(&w.sessions_timed_out));
        let datagrams = "Datagrams on the WebRTC media port: received, sent, unroutable (no session: unknown ufrag or address, garbage), dropped (session queue full).";
        for (direction, counter) in [
            ("in", &w.datagrams_in),
            ("out", &w.datagrams_out),
            ("unroutable", &w.datagrams_unroutable),
            ("dropped", &w.datagrams_dropped),
        ] {
            out.labelled(
                "rill_webrtc_datagrams_total",
                Kind::Counter,
                datagrams,
                &[("direction", direction)],
                count(counter),
            );
        }
        let bytes = "Bytes on the WebRTC media port.";
        out.labelled("rill_webrtc_bytes_total", Kind::Counter, bytes, &[("direction", "in")], count(&w.bytes_in));
        out.labelled("rill_webrtc_bytes_total", Kind::Counter, bytes, &[("direction", "out")], count(&w.bytes_out));
        out.sample(
            "rill_webrtc_nacks_received_total",
            Kind::Counter,
            "NACKed packets viewers asked for (answered from each track's retransmission history).",
            count(&w.nacks_received),
        );
        let plis = "Keyframe requests (PLI/FIR) received from viewers and sent to WHIP publishers.";
        out.labelled(
            "rill_webrtc_plis_total",
            Kind::Counter,
            plis,
            &[("direction", "received")],
            count(&w.plis_received),
        );
        out.labelled("rill_webrtc_plis_total", Kind::Counter, plis, &[("direction", "sent")], count(&w.plis_sent));
        out.sample(
            "rill_webrtc_packets_lost_total",
            Kind::Counter,
            "RTP packets viewers reported lost (RTCP receiver reports).",
            count(&w.packets_lost),
        );
        out.sample(
            "rill_webrtc_ingest_frames_dropped_total",
            Kind::Counter,
            "WHIP video frames dropped by the depacketizer (loss not repaired in time, malformed).",
            count(&w.ingest_frames_dropped),
        );
        let rtts: Vec<f64> = self.sessions().iter().filter_map(|s| s.rtt_ms).collect();
        if !rtts.is_empty() {
            out.sample(
                "rill_webrtc_rtt_ms",
                Kind::Gauge,
                "Mean round-trip time of WHEP sessions (RTCP receiver reports), where known.",
                rtts.iter().sum::<f64>() / rtts.len() as f64,
            );
        }
    }
}
