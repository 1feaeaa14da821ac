//! CMAF: fragmented MP4 for live and recorded streams. [`fmp4`] writes the boxes of one
//! track (init segment, `moof`/`mdat` fragments); [`segmenter`] cuts a stream into
//! keyframe-aligned segments and low-latency parts that LL-HLS, DASH and the recorder share;
//! [`CmafSubscriber`] runs it on a Bus subscription; [`progressive`] remuxes CMAF tracks into
//! one progressive MP4 (downloads).

pub mod fmp4;
pub mod progressive;
pub mod scan;
pub mod segmenter;
mod subscriber;

pub use segmenter::{CmafTrack, Part, Segmenter, SegmenterConfig, SegmenterEvent, TrackKind};
pub use subscriber::{CmafSubscriber, FellBehind};
