//! A coded access unit travelling through the Bus.

use crate::time::MediaTime;
use bytes::Bytes;

/// Which track of a stream a frame belongs to (see [`crate::Tracks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrackId(pub u8);

impl TrackId {
    /// The stream's main video track.
    pub const VIDEO: TrackId = TrackId(0);
    /// The stream's main audio track.
    pub const AUDIO: TrackId = TrackId(1);
}

/// One coded frame. Video payloads are AVCC (4-byte length-prefixed NAL units) for AVC;
/// AAC payloads are raw access units (no ADTS). Cloning a frame clones the `Bytes` handle,
/// never the payload.
#[derive(Clone, Debug)]
pub struct Frame {
    pub track: TrackId,
    /// Presentation time.
    pub pts: MediaTime,
    /// Decode time (equal to `pts` when there is no reordering).
    pub dts: MediaTime,
    /// A random access point: an IDR for video, every frame for audio.
    pub keyframe: bool,
    pub payload: Bytes,
}

impl Frame {
    pub fn is_video(&self) -> bool {
        self.track == TrackId::VIDEO
    }
}
