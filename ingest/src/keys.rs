//! The publish policy every ingest protocol shares: what a publisher gave (stream key, or a
//! publish token) → a public stream name through the one access decision
//! ([`rill_media::access`], via [`resolve_publish`], with the typed [`PublishRefusal`]), and
//! per-stream SRT passphrases ([`SrtPassphrases`]). The binary implements the decision's
//! directory and the passphrases from its config and stream registry.

// The definitions live in `rtmp::driver`; this module is the shared name protocols other than
// RTMP use.
pub use crate::rtmp::driver::{resolve_publish, PublishRefusal};

/// Per-stream SRT encryption: the passphrase a caller must use to publish or read a stream.
pub trait SrtPassphrases: Send + Sync + 'static {
    /// The passphrase of the stream called `name` (its public name), if it has one.
    fn srt_passphrase(&self, name: &str) -> Option<String>;
}
