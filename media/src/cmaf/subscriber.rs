//! A Bus subscription cut into CMAF: the loop every packaging service runs (feed the segmenter
//! the stream's tracks and frames as they arrive, hand back what it produced), written once for
//! the live packager and the recorder. Falling behind the live edge is an error the caller
//! sees ([`FellBehind`]), never a silent end: it resubscribes and the stream goes on after a
//! discontinuity.

use super::{Segmenter, SegmenterConfig, SegmenterEvent};
use crate::bus::{BusError, Delivery, Subscriber};
use std::time::SystemTime;

/// The subscription fell behind the live edge and frames were lost: the Bus skipped it to the
/// newest keyframe, or dropped it. The stream may well still be live:
/// [`CmafSubscriber::resubscribe`] continues it.
#[derive(Debug, thiserror::Error)]
pub enum FellBehind {
    #[error("fell behind the live edge of {path} and skipped {frames} frames to the newest keyframe")]
    Skipped { path: String, frames: u64 },
    #[error("fell behind the live edge of {path} and was dropped: {source}")]
    Dropped {
        path: String,
        #[source]
        source: BusError,
    },
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
    pub fn path(&self) -> &crate::path::StreamPath {
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
                let skipped = self.subscriber.take_skipped();
                if skipped > 0 {
                    // Never silent: what follows the gap comes on a new subscription, after a
                    // discontinuity, and the caller counts the loss.
                    self.segmenter.discontinue();
                    return Err(FellBehind::Skipped { path: self.path().to_string(), frames: skipped });
                }
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
                return Err(FellBehind::Dropped { path: self.path().to_string(), source });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{Bus, BusConfig, PublisherInfo};
    use crate::cmaf::Part;
    use crate::testing::{avc_aac_tracks, SyntheticStream};
    use std::time::Duration;

    fn parts(events: Vec<SegmenterEvent>) -> Vec<Part> {
        events.into_iter().filter_map(|e| if let SegmenterEvent::Part(p) = e { Some(p) } else { None }).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn falling_behind_is_an_error_and_a_resubscription_goes_on_after_a_discontinuity() {
        let bus = Bus::new(BusConfig { slow_subscriber_timeout: Duration::from_millis(50), ..Default::default() });
        let path = crate::path::StreamPath::live("a").unwrap();
        let publisher = bus.publish(&path, PublisherInfo { protocol: "test", peer: "test".into() }).unwrap();
        publisher.set_tracks(avc_aac_tracks(false));
        let mut cmaf = CmafSubscriber::new(bus.subscribe_service(&path).unwrap(), SegmenterConfig::default());
        let stream = SyntheticStream { gop_ms: 1000, cts_ms: 0, audio: false, video_bytes: 100 };
        let mut frames = stream.frames(0, 60_000).into_iter();
        assert!(cmaf.next().await.unwrap().is_some(), "the tracks");
        // It keeps up for a GOP and a half…
        let mut before = Vec::new();
        frames.by_ref().take(45).for_each(|f| publisher.push(f));
        while before.is_empty() {
            before.extend(parts(cmaf.next().await.unwrap().expect("live")));
        }
        // …then three GOPs go by unread: the Bus skips it to the newest keyframe, and it says so.
        frames.by_ref().take(90).for_each(|f| publisher.push(f));
        let behind = loop {
            match cmaf.next().await {
                Ok(events) => before.extend(parts(events.expect("still live"))),
                Err(behind) => break behind,
            }
        };
        assert!(matches!(&behind, FellBehind::Skipped { path, frames } if path == "live/a" && *frames > 0), "{behind}");
        assert!(bus.contains(&path), "the stream is still live");

        cmaf.resubscribe(bus.subscribe_service(&path).unwrap());
        frames.by_ref().take(45).for_each(|f| publisher.push(f));
        let mut after = Vec::new();
        while after.iter().all(|p: &Part| !p.discontinuity) {
            after.extend(parts(cmaf.next().await.expect("following again").expect("live")));
        }
        let last_before = before.iter().map(|p| p.msn).max().unwrap_or(0);
        let resumed = after.iter().find(|p| p.discontinuity).unwrap();
        assert!(resumed.msn > last_before && resumed.index == 0 && resumed.independent, "{resumed:?}");
        assert!(before.iter().all(|p| !p.discontinuity));
        // Only the stream's end ends it.
        assert!(bus.close(&path));
        while cmaf.next().await.expect("an end, not an error").is_some() {}
    }
}
