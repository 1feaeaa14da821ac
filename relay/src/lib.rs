//! `rill-relay`: what viewers pull from the [`rill_media::Bus`].
//!
//! - [`feed`]: a subscriber as a sequence of FLV tag bodies (codec headers first, GOP cache next).
//! - [`http_flv`]: `GET /live/<name>.flv` as a byte stream whose payload pieces are the Bus's own
//!   `Bytes` (the HTTP server writes them with vectored writes).
//! - [`rtmp_play`]: players on the RTMP port, chunked without copying payloads.
//! - [`srt_play`]: SRT read callers (`read:live/<name>`), the stream muxed to MPEG-TS.
//! - [`packager`]: every live stream cut into CMAF segments and parts, kept in a bounded window.
//! - [`hls`]: LL-HLS playlists and the blocking-reload / delta-update rules.
//! - [`dash`]: the LL-DASH MPD over the same segments.
//! - [`metrics`]: the Prometheus metrics of egress.

pub mod dash;
pub mod feed;
pub mod hls;
pub mod http_flv;
pub mod metrics;
pub mod packager;
pub mod rtmp_play;
pub mod srt_play;

use std::sync::atomic::AtomicU64;

/// Compares a rendered playlist or MPD with `src/testdata/<name>`; `UPDATE_GOLDEN=1` rewrites it.
#[cfg(test)]
pub(crate) fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata").join(name);
    rill_media::testing::assert_golden(&path, actual);
}

/// Egress counters, for metrics.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub http_flv_bytes_out: AtomicU64,
    pub rtmp_play_bytes_out: AtomicU64,
    pub srt_play_bytes_out: AtomicU64,
    pub viewers_total: AtomicU64,
    pub viewers_disconnected_slow: AtomicU64,
}
