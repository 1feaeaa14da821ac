//! `rill`: the server as a library, so its wiring and HTTP handlers are testable in-process.
//! The binary (`main.rs`) only parses the command line and calls [`app::serve`].
//!
//! Modules depend one way: [`app`] (the composition root) → [`http`] (every HTTP surface) →
//! [`state`] (what handlers share) → the subsystems' wiring ([`streams`], [`sources`],
//! [`transcoding`], [`webrtc_feeds`], [`thumbnails`], [`uploads`], [`processing`], [`storyboard`], [`audience`])
//! → [`config`]. The domain rules live in the crates (`rill-media`, `rill-ingest`, `rill-relay`,
//! `rill-vod`, `rill-transcode`, `rill-webrtc`, `rill-analytics`).

pub mod access;
pub mod app;
pub mod audience;
pub mod config;
pub mod http;
pub mod processing;
pub mod sources;
pub mod state;
pub mod storyboard;
pub mod streams;
pub mod thumbnailer;
pub mod thumbnails;
pub mod transcoding;
pub mod uploads;
pub mod webrtc_feeds;
