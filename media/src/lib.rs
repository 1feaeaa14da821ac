//! `rill-media`: the vocabulary every Rill crate shares.
//!
//! - [`time`]: media time as a type (`MediaTime` = ticks + timebase), wrapping timestamps unwrapped.
//! - [`frame`]: a coded access unit ([`Frame`]) with a zero-copy `Bytes` payload.
//! - [`track`]: codec configuration of a stream's tracks (AVC, AAC, HEVC, AV1, VP9, VP8, Opus)
//!   and their picture sizes.
//! - [`avc`], [`aac`]: bitstream helpers (AVCC ↔ Annex B, SPS, AudioSpecificConfig).
//! - [`bits`]: the bit reader every codec parser uses.
//! - [`ratelimit`]: per-client token buckets.
//! - [`wallclock`]: wall-clock times as ISO 8601 text (HLS program dates, DASH timing).
//! - [`hevc`]: the HEVC decoder configuration record (hvcC) from and to parameter sets, picture size.
//! - [`av1`], [`vp9`]: av1C from a sequence header OBU and vpcC from a key frame's header.
//! - [`sync`]: mutex locking that survives a panic elsewhere.
//! - [`mpegts`]: MPEG-TS demux and mux (SRT ingest and playback), 33-bit PTS unwrapping.
//! - [`flv`]: FLV tag bodies in and out (shared by RTMP ingest, RTMP play and HTTP-FLV).
//! - [`path`]: stream names and [`StreamPath`], the typed Bus key (`live/<name>[/<feed>]`).
//! - [`bus`]: the in-memory fan-out of live streams, with a GOP cache.
//! - [`cmaf`]: fragmented MP4 (CMAF) tracks, and the segmenter of segments and low-latency parts.
//! - [`metrics`]: the Prometheus text exposition each subsystem writes its metrics into.
//! - [`access`]: the one access decision (stream keys, HS256 tokens, playback modes, token
//!   sessions) every ingest and egress protocol asks.
//! - [`persist`]: atomic, owner-only writes of the small state files in the data directory.
//!
//! Nothing here touches a socket, HTTP or a database.

pub mod aac;
pub mod access;
pub mod av1;
pub mod avc;
pub mod bits;
pub mod bus;
pub mod cmaf;
pub mod flv;
pub mod frame;
pub mod hevc;
pub mod manifest;
pub mod metrics;
pub mod mpegts;
pub mod path;
pub mod persist;
pub mod ratelimit;
pub mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod track;
pub mod vp9;
pub mod wallclock;

pub use bus::{Bus, BusConfig, BusError, Delivery, Publisher, PublisherInfo, StreamSnapshot, Subscriber};
pub use frame::{Frame, TrackId};
pub use path::{Feed, PathError, RenditionName, StreamName, StreamPath};
pub use time::{MediaTime, Timebase};
pub use track::{AacConfig, AvcConfig, CodecConfig, Tracks};
