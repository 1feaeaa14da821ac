//! `rill-transcode`: media processing with GStreamer (appsrc → elements → appsink). Today it
//! makes thumbnails ([`thumbnail`]); the live ABR ladder and AAC↔Opus will join it.

pub mod thumbnail;

use std::sync::OnceLock;

/// Why GStreamer cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("GStreamer is unavailable: {0}")]
pub struct InitError(String);

/// Initializes GStreamer once for the process.
pub fn init() -> Result<(), InitError> {
    static INIT: OnceLock<Result<(), InitError>> = OnceLock::new();
    INIT.get_or_init(|| gstreamer::init().map_err(|e| InitError(e.to_string()))).clone()
}
