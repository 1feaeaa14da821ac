//! A Bus subscriber as FLV tag bodies: the codec sequence headers (again whenever the tracks
//! change, e.g. after a publisher reconnects), then frames from the latest keyframe on.

use rill_media::flv::{frame_body, sequence_headers, TagBody};
use rill_media::{BusError, Delivery, Subscriber, Tracks};
use std::sync::Arc;

pub struct FlvFeed {
    sub: Subscriber,
    tracks: Option<Arc<Tracks>>,
    headers_due: bool,
}

impl FlvFeed {
    pub fn new(sub: Subscriber) -> Self {
        FlvFeed { sub, tracks: None, headers_due: false }
    }

    /// The tracks, once the first batch has been read.
    pub fn tracks(&self) -> Option<&Tracks> {
        self.tracks.as_deref()
    }

    /// Appends the next tags to `out`. Returns `Ok(false)` when the stream has ended.
    pub async fn next_batch(&mut self, out: &mut Vec<TagBody>) -> Result<bool, BusError> {
        loop {
            match self.sub.recv().await? {
                Delivery::Tracks(tracks) => {
                    self.tracks = Some(tracks);
                    self.headers_due = true;
                }
                Delivery::Frames(frames) => {
                    let tracks = self.tracks.as_deref().expect("the Bus delivers tracks before frames");
                    if std::mem::take(&mut self.headers_due) {
                        // Stamp the headers with the first frame's time so timestamps never go back.
                        out.extend(sequence_headers(tracks, frames[0].dts.as_millis() as u32));
                    }
                    out.extend(frames.iter().filter_map(|f| frame_body(f, tracks)));
                    if !out.is_empty() {
                        return Ok(true);
                    }
                }
                Delivery::Ended => return Ok(false),
            }
        }
    }
}
