//! Recording metrics: recordings now and by outcome, bytes and segments written.

use crate::recorder::RecorderStats;
use rill_media::metrics::{count, Exposition, Kind};

impl RecorderStats {
    pub fn write_metrics(&self, out: &mut Exposition) {
        out.sample("rill_recordings_active", Kind::Gauge, "Live streams being recorded now.", count(&self.active));
        let help = "Recordings by outcome: started, or failed (storage or catalog error; the live stream goes on).";
        out.labelled("rill_recordings_total", Kind::Counter, help, &[("outcome", "started")], count(&self.started));
        out.labelled("rill_recordings_total", Kind::Counter, help, &[("outcome", "failed")], count(&self.failed));
        out.sample(
            "rill_recording_bytes_written_total",
            Kind::Counter,
            "Bytes written to recordings.",
            count(&self.bytes_written),
        );
        out.sample(
            "rill_recording_segments_total",
            Kind::Counter,
            "Recorded segments indexed in the catalog.",
            count(&self.segments_written),
        );
        out.sample(
            "rill_recording_frames_lost_total",
            Kind::Counter,
            "Frames recordings lost (buffer full while storage or the catalog stalled, or behind the live edge).",
            count(&self.frames_lost),
        );
        out.sample(
            "rill_recording_gaps_total",
            Kind::Counter,
            "Gaps in recordings (each a run of lost frames, marked as a discontinuity in the video).",
            count(&self.gaps),
        );
        out.sample(
            "rill_recording_spilled_bytes_total",
            Kind::Counter,
            "Bytes recordings spilled to disk while their writer waited.",
            count(&self.spilled_bytes),
        );
    }
}
