//! `rill-transcode`: media processing with GStreamer (appsrc → elements → appsink).
//!
//! - [`ladder`]: the live ABR ladder. One decode of a live H.264/HEVC stream, one scaler + H.264
//!   encoder per rung, each rendition published back onto the Bus as `<source>/<rung>` with the
//!   source's keyframes and presentation times.
//! - [`manager`]: which live streams get a ladder (`[transcode]` and per-stream overrides), and
//!   their ladders' lifecycle, API view and metrics.
//! - [`audio`]: AAC → Opus for WebRTC viewers, one shared transcode per stream
//!   (`<source>/opus`), running while someone holds an [`audio::OpusFeedGuard`].
//! - [`webrtc`]: the WebRTC video rendition (Constrained Baseline H.264, `<source>/webrtc`)
//!   for viewers that cannot decode the source's video, shared, running while someone holds a
//!   [`webrtc::BaselineGuard`].
//! - [`file`]: an uploaded file probed (or refused with a reason) and transcoded into the VOD
//!   ladder (H.264 renditions with aligned keyframes, AAC audio).
//! - [`thumbnail`]: the first picture of a fragmented MP4 as a JPEG.
//! - [`storyboard`]: seek previews: a sprite of pictures every few seconds of a video track.
//! - [`flv_file`]: an FLV file read into Bus tracks and frames (tests, examples, benchmarks).
//!
//! Nothing here blocks a Bus publisher: transcoders read the Bus as services and drop input
//! (up to the next keyframe) rather than wait.

pub mod audio;
pub mod file;
pub mod flv_file;
pub mod ladder;
pub mod manager;
mod overload;
mod pipeline;
pub mod storyboard;
pub mod thumbnail;
mod timeline;
pub mod webrtc;

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

/// Why a live transcode (ladder or Opus feed) could not start or ended early. Every variant
/// names the source stream.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error(transparent)]
    Unavailable(#[from] InitError),
    #[error("{stream}: {source}")]
    Bus { stream: String, source: rill_media::BusError },
    #[error("{stream}: building the pipeline failed: {message}")]
    Pipeline { stream: String, message: String },
    /// A GStreamer element posted an error while running.
    #[error("{stream}: {element}: {message}")]
    Element { stream: String, element: String, message: String },
    #[error("{stream}: cannot transcode {what}")]
    Unsupported { stream: String, what: String },
    /// Every rung was dropped because the machine could not keep real time.
    #[error("{stream}: overloaded: every rung was dropped")]
    Overloaded { stream: String },
    #[error("invalid FLV file: {0}")]
    Flv(String),
}
