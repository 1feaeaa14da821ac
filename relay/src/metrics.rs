//! Egress metrics: LL-HLS/DASH packaging and requests, HTTP-FLV and SRT bytes, viewers started.

use crate::packager::PackagerStats;
use crate::RelayStats;
use rill_media::metrics::{count, Exposition, Kind};

impl PackagerStats {
    pub fn write_metrics(&self, out: &mut Exposition) {
        out.sample("rill_packaged_streams", Kind::Gauge, "Streams packaged for LL-HLS and DASH.", count(&self.streams));
        out.sample("rill_cmaf_parts_total", Kind::Counter, "CMAF parts written (all tracks).", count(&self.parts));
        out.sample(
            "rill_cmaf_segments_total",
            Kind::Counter,
            "CMAF segments started (all tracks).",
            count(&self.segments),
        );
        out.sample(
            "rill_hls_dash_playlist_requests_total",
            Kind::Counter,
            "Playlist and MPD requests.",
            count(&self.playlist_requests),
        );
        let help = "Blocking playlist reloads, and those that timed out (503).";
        let blocking = "rill_hls_blocking_requests_total";
        out.labelled(blocking, Kind::Counter, help, &[("outcome", "all")], count(&self.blocked_requests));
        out.labelled(blocking, Kind::Counter, help, &[("outcome", "timeout")], count(&self.blocked_timeouts));
        out.sample(
            "rill_hls_dash_bytes_out_total",
            Kind::Counter,
            "Segment, part and init bytes sent to HLS/DASH players.",
            count(&self.bytes_out),
        );
    }
}

impl RelayStats {
    pub fn write_metrics(&self, out: &mut Exposition) {
        let help = "Bytes sent by protocol.";
        let sent = "rill_bytes_sent_total";
        out.labelled(sent, Kind::Counter, help, &[("protocol", "http-flv")], count(&self.http_flv_bytes_out));
        out.labelled(sent, Kind::Counter, help, &[("protocol", "srt")], count(&self.srt_play_bytes_out));
        out.sample(
            "rill_viewers_started_total",
            Kind::Counter,
            "Viewers that started playing.",
            count(&self.viewers_total),
        );
    }
}
