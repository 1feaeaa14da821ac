//! A Bus subscription cut into CMAF: the loop every packaging service runs (feed the segmenter
//! the stream's tracks and frames as they arrive, hand back what it produced), written once for
//! the live packager and the recorder. Falling behind the live edge is an error the caller
//! sees ([`FellBehind`]), never a silent end: it resubscribes and the stream goes on after a
//! discontinuity.

use super::{Segmenter, SegmenterConfig, SegmenterEvent};
use crate::bus::{BusError, Delivery, Subscriber};
use std::time::SystemTime;

/// The subscription fell so far behind the live edge that the Bus dropped it; frames were
/// lost. The stream may well still be live: [`CmafSubscriber::resubscribe`] continues it.
#[derive(Debug, thiserror::Error)]
#[error("fell behind the live edge of {path} and lost frames: {source}")]
pub struct FellBehind {
    pub path: String,
    #[source]
    pub source: BusError,
}

/// A [`Subscriber`] whose deliveries come out as [`SegmenterEvent`]s.
pub struct CmafSubscriber {
    subscriber: Subscriber,
    segmenter: Segmenter,
    ended: bool,
}

impl CmafSubscriber {
    pub fn new(subscriber: Subscriber, config: SegmenterConfig) -> CmafSubscriber {
        CmafSubscriber { subscriber, segmenter: Segmenter::new(config), ended: false }
    }

    /// The stream path subscribed to.
    pub fn path(&self) -> &str {
        self.subscriber.path()
    }

    /// The events of the next delivery (possibly none), or `None` once the stream has ended
    /// and its last parts were returned. Frames are stamped with their arrival time.
    ///
    /// On [`FellBehind`] the parts cut so far are kept for the next call and the segmenter
    /// waits for a keyframe: call [`CmafSubscriber::resubscribe`] with a new subscription (the
    /// next segment is then a discontinuity), or [`CmafSubscriber::finish`] if there is none.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Vec<SegmenterEvent>>, FellBehind> {
        if self.ended {
            return Ok(None);
        }
        let delivery = self.subscriber.recv().await;
        let now = SystemTime::now();
        match delivery {
            Ok(Delivery::Tracks(tracks)) => self.segmenter.set_tracks(&tracks),
            Ok(Delivery::Frames(frames)) => {
                for frame in &frames {
                    self.segmenter.push(frame, now);
                }
            }
            Ok(Delivery::Ended) => {
                self.segmenter.finish();
                self.ended = true;
            }
            Err(source) => {
                self.segmenter.discontinue();
                return Err(FellBehind { path: self.path().to_string(), source });
            }
        }
        Ok(Some(self.segmenter.drain().collect()))
    }

    /// Continues on a new subscription to the same stream (after [`FellBehind`]): same
    /// segmenter, so segment numbers go on; the next segment is a discontinuity.
    pub fn resubscribe(&mut self, subscriber: Subscriber) {
        self.subscriber = subscriber;
        self.ended = false;
    }

    /// Ends without a new subscription: the last parts cut. [`CmafSubscriber::next`] then
    /// returns `None`.
    pub fn finish(&mut self) -> Vec<SegmenterEvent> {
        self.segmenter.finish();
        self.ended = true;
        self.segmenter.drain().collect()
    }
}
