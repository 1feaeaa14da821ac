//! Typed errors of the WebRTC crate: what signalling turns into HTTP statuses, and what a
//! session's core reports when the peer connection fails.

use thiserror::Error;

/// Why an offer was refused or a session could not be set up.
#[derive(Debug, Error)]
pub enum WebRtcError {
    /// The body is not an SDP offer we can read (HTTP 400).
    #[error("malformed SDP offer: {0}")]
    BadSdp(#[from] crate::sdp::SdpError),
    /// The offer has no codec we can take or send (HTTP 406).
    #[error("no usable codec in the offer: {0}")]
    NoUsableCodec(String),
    /// The stream already has a publisher (HTTP 409).
    #[error("stream {0} is already live")]
    AlreadyLive(String),
    /// A WHEP offer for a stream that is not live (HTTP 404).
    #[error("stream {0} is not live")]
    NotLive(String),
    /// `[webrtc] max_sessions` reached (HTTP 503).
    #[error("the WebRTC session limit ({0}) is reached")]
    TooManySessions(usize),
    /// The peer connection refused the offer or failed to answer (HTTP 400 / 500).
    #[error("peer connection: {0}")]
    Rtc(String),
    /// The media socket could not be bound.
    #[error("cannot bind the WebRTC media socket {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl From<rtc::shared::error::Error> for WebRtcError {
    fn from(e: rtc::shared::error::Error) -> Self {
        WebRtcError::Rtc(e.to_string())
    }
}
