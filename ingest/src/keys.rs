//! The auth policy every ingest protocol shares: a publisher's stream key → a public stream name
//! ([`StreamKeys`], with the typed [`PublishRefusal`]), and per-stream SRT passphrases
//! ([`SrtPassphrases`]). The binary implements both from its config and stream registry.

// The definitions still live in `rtmp::driver` (being edited for RTMPS at the time of writing);
// this module is the shared name protocols other than RTMP use.
pub use crate::rtmp::driver::{PublishRefusal, StreamKeys};

/// Per-stream SRT encryption: the passphrase a caller must use to publish or read a stream.
pub trait SrtPassphrases: Send + Sync + 'static {
    /// The passphrase of the stream called `name` (its public name), if it has one.
    fn srt_passphrase(&self, name: &str) -> Option<String>;
}
