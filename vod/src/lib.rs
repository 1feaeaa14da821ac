//! `rill-vod`: every live stream becomes a video. The recorder writes a stream's CMAF parts to
//! storage as it goes, the catalog (SQLite or PostgreSQL) indexes videos and their segments, and
//! the manifests module renders VOD (and live-rewind) HLS playlists and DASH MPDs from the index.

pub mod catalog;
mod id;

pub use id::VideoId;
