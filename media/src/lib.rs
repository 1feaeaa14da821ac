//! `rill-media`: the vocabulary every Rill crate shares.
//!
//! - [`time`]: media time as a type (`MediaTime` = ticks + timebase).
//! - [`frame`]: a coded access unit ([`Frame`]) with a zero-copy `Bytes` payload.
//! - [`track`]: codec configuration of a stream's tracks (AVC, AAC; room for HEVC/AV1/Opus).
//! - [`avc`], [`aac`]: bitstream helpers (AVCC ↔ Annex B, SPS, AudioSpecificConfig).
//! - [`wallclock`]: wall-clock times as ISO 8601 text (HLS program dates, DASH timing).
//! - [`hevc`]: the HEVC decoder configuration record (hvcC) from and to parameter sets.
//! - [`mpegts`]: MPEG-TS demux and mux (SRT ingest and playback), 33-bit PTS unwrapping.
//! - [`flv`]: FLV tag bodies in and out (shared by RTMP ingest, RTMP play and HTTP-FLV).
//! - [`path`]: stream names and [`StreamPath`], the typed Bus key (`live/<name>[/<feed>]`).
//! - [`bus`]: the in-memory fan-out of live streams, with a GOP cache.
//! - [`cmaf`]: fragmented MP4 (CMAF) tracks, and the segmenter of segments and low-latency parts.
//!
//! Nothing here touches a socket, HTTP or a database.

pub mod aac;
pub mod avc;
pub mod bits;
pub mod bus;
pub mod cmaf;
pub mod flv;
pub mod frame;
pub mod hevc;
pub mod manifest;
pub mod mpegts;
pub mod path;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod track;
pub mod wallclock;

pub use bus::{Bus, BusConfig, BusError, Delivery, Publisher, PublisherInfo, StreamSnapshot, Subscriber};
pub use frame::{Frame, TrackId};
pub use path::{Feed, PathError, RenditionName, StreamName, StreamPath};
pub use time::{MediaTime, Timebase};
pub use track::{AacConfig, AvcConfig, CodecConfig, Tracks};
