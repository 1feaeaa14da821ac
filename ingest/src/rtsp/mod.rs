//! RTSP pull: Rill connects to IP cameras (or any RTSP server) with the `retina` client and
//! publishes what they send onto the Bus as `live/<name>`.
//!
//! - [`url`]: camera URLs without their credentials (what logs, the API and peers show);
//! - [`map`]: sans-IO choice of SDP streams and mapping of parameters and frames to
//!   [`rill_media::Tracks`] and [`rill_media::Frame`]s;
//! - [`backoff`]: reconnect delays;
//! - [`source`]: the tokio driver, one task per source, reconnecting until stopped;
//! - [`config`]: a source as configured (name, URL, always or on demand);
//! - [`manager`]: every source's lifecycle (config and API sources, `sources.json`, on-demand
//!   start and release), its API view and metrics.
//!
//! RTP over the RTSP TCP connection (interleaved) is the transport: it crosses NATs and
//! firewalls and does not lose packets, which retina's UDP support (no reorder buffer) would.

pub mod backoff;
pub mod config;
pub mod manager;
pub mod map;
pub mod source;
pub mod url;

pub use config::{InvalidSource, SourceConfig, SourceMode};
pub use manager::{Cameras, CamerasConfig, SourceOrigin};
pub use source::{spawn, RtspSettings, SourceHandle, SourceState, SourceStatus};
pub use url::{redact, CameraUrl, UrlError};
