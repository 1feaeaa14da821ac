//! A Bus subscription cut into CMAF: the loop every packaging service runs (feed the segmenter
//! the stream's tracks and frames as they arrive, hand back what it produced), written once for
//! the live packager and the recorder.

use super::{Segmenter, SegmenterConfig, SegmenterEvent};
use crate::bus::{Delivery, Subscriber};
use std::time::SystemTime;

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

    /// The events of the next delivery (possibly none), or `None` once the stream has ended
    /// and its last parts were returned. Frames are stamped with their arrival time.
    pub async fn next(&mut self) -> Option<Vec<SegmenterEvent>> {
        if self.ended {
            return None;
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
            Ok(Delivery::Ended) | Err(_) => {
                self.segmenter.finish();
                self.ended = true;
            }
        }
        Some(self.segmenter.drain().collect())
    }
}
