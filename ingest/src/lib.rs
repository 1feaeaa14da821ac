//! `rill-ingest`: protocols that bring live streams onto the [`rill_media::Bus`].
//!
//! Today: RTMP publish from OBS and ffmpeg ([`rtmp`]). The RTMP listener also accepts
//! players; it hands them to a play handler supplied by the caller (the relay crate serves them).
//! SRT publish and read ([`srt`]): MPEG-TS over `srt-tokio`, read callers handed to a handler
//! like RTMP players. [`keys`] is the auth policy all of them share.
//! RTSP pull from IP cameras ([`rtsp`]): Rill is the client, one task per configured source.
//! [`metrics`]: the Prometheus metrics of RTMP and SRT.

pub mod keys;
pub mod metrics;
pub mod rtmp;
pub mod rtsp;
pub mod srt;
