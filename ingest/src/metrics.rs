//! Ingest metrics: RTMP connections, bytes, refused keys and protocol errors; SRT callers,
//! refusals and MPEG-TS errors.

use crate::rtmp::RtmpStats;
use crate::srt::SrtStats;
use rill_media::metrics::{count, Exposition, Kind};

const BYTES_IN: &str = "Bytes received by protocol.";
const BYTES_OUT: &str = "Bytes sent by protocol.";

impl RtmpStats {
    pub fn write_metrics(&self, out: &mut Exposition) {
        let rtmp = [("protocol", "rtmp")];
        out.labelled("rill_bytes_received_total", Kind::Counter, BYTES_IN, &rtmp, count(&self.bytes_in));
        out.labelled("rill_bytes_sent_total", Kind::Counter, BYTES_OUT, &rtmp, count(&self.bytes_out));
        out.labelled(
            "rill_auth_failures_total",
            Kind::Counter,
            "Refused credentials by kind.",
            &[("kind", "publish_key")],
            count(&self.auth_failures),
        );
        out.labelled(
            "rill_connections_total",
            Kind::Counter,
            "Accepted connections by protocol.",
            &rtmp,
            count(&self.connections_total),
        );
        out.labelled(
            "rill_connections_open",
            Kind::Gauge,
            "Open connections by protocol.",
            &rtmp,
            count(&self.connections_open),
        );
        out.labelled(
            "rill_protocol_errors_total",
            Kind::Counter,
            "Connections closed or messages dropped for protocol errors.",
            &rtmp,
            count(&self.protocol_errors),
        );
    }
}

impl SrtStats {
    pub fn write_metrics(&self, out: &mut Exposition) {
        out.labelled(
            "rill_bytes_received_total",
            Kind::Counter,
            BYTES_IN,
            &[("protocol", "srt")],
            count(&self.bytes_in),
        );
        out.sample(
            "rill_srt_connections_total",
            Kind::Counter,
            "SRT callers (publishers and readers), refused ones included.",
            count(&self.connections_total),
        );
        for (reason, counter) in [
            ("streamid", &self.refused_streamid),
            ("auth", &self.refused_auth),
            ("passphrase", &self.refused_passphrase),
            ("other", &self.refused_other),
        ] {
            let help = "SRT callers refused, by reason.";
            out.labelled("rill_srt_refused_total", Kind::Counter, help, &[("reason", reason)], count(counter));
        }
        out.sample(
            "rill_srt_ts_continuity_errors_total",
            Kind::Counter,
            "MPEG-TS continuity counter errors in SRT publishers' streams (lost or reordered packets).",
            count(&self.ts_continuity_errors),
        );
        out.sample(
            "rill_srt_ts_errors_total",
            Kind::Counter,
            "Malformed MPEG-TS/PES/ADTS data dropped from SRT publishers' streams.",
            count(&self.ts_errors),
        );
    }
}
