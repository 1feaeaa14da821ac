//! Rill WebRTC: WHIP ingest and WHEP playback on one UDP port.
//!
//! Built on webrtc-rs's sans-IO core, the `rtc` crate (pinned `=0.21.1`; the async `webrtc`
//! crate 0.20+ is a thin tokio layer over it). The sans-IO core fits a server with one socket
//! for every session: each [`session::Session`] is a peer connection that takes datagrams and
//! `now` and returns datagrams and deadlines, and [`driver`] is the only code with a socket.
//!
//! - [`sdp`]: our bounded checks of an offer and the codec choice (H.264 `profile-level-id`).
//! - [`udp_mux`]: which session a datagram belongs to (STUN USERNAME ufrag, then 5-tuple).
//! - [`session`]: one peer connection (ICE-lite, DTLS-SRTP, NACK, RTCP reports).
//! - [`whip`]: RTP from a publisher → `Frame`s on the Bus (H.264, VP8, VP9, AV1, Opus).
//! - [`depacketize`]: bounded VP8/VP9/AV1 depacketizers with keyframe and config detection.
//! - [`whep`]: Bus frames → RTP for a viewer (H.264 passthrough with SPS/PPS before
//!   keyframes, Opus). A viewer whose offer cannot decode the source's H.264 profile gets the
//!   WebRTC rendition (`live/<name>/webrtc`, Constrained Baseline) that the binary's
//!   [`DerivedFeeds`] make on demand.
//! - [`driver`]: the media socket, routing, and one task per session.
//! - [`metrics`]: the Prometheus metrics of sessions and the media port.

pub mod depacketize;
pub mod driver;
pub mod error;
pub mod metrics;
pub mod sdp;
pub mod session;
pub mod udp_mux;
pub mod whep;
pub mod whip;

pub use driver::{Created, DerivedFeeds, FeedFn, OpusFeedFn, SessionInfo, WebRtc, WebRtcConfig, WebRtcStats};
pub use error::WebRtcError;
pub use session::Role;
