//! `rill-vod`: every live stream becomes a video. The recorder writes a stream's CMAF parts to
//! storage as they are cut, the catalog (SQLite or PostgreSQL) indexes videos and their
//! segments, the manifests module renders VOD (and live-rewind) HLS playlists and DASH MPDs from
//! that index, the library serves them to the HTTP layer and retention deletes old videos.
//! [`metrics`] writes the recorder's Prometheus metrics. [`upload`] takes files over tus and
//! queues them for processing into videos. [`captions`] checks and normalizes caption files; [`download`] lays out progressive MP4
//! downloads.

pub mod captions;
pub mod catalog;
pub mod download;
mod id;
pub mod library;
pub mod manifest;
pub mod metrics;
pub mod recorder;
pub mod retention;
pub mod storage;
pub mod upload;

pub use id::VideoId;
