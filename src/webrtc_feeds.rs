//! What the transcoder derives for WebRTC viewers, wired from the config: the Opus feed of a
//! source whose audio is not Opus (always), and the WebRTC video rendition (Constrained
//! Baseline H.264, `live/<name>/webrtc`) for viewers that cannot decode the source's video,
//! unless `[webrtc] transcode = false` (then such viewers get 406). Each starts with its first
//! viewer and stops with its last.

use crate::config::Config;
use rill_media::{Bus, StreamPath};
use rill_transcode::audio::OpusFeeds;
use rill_transcode::ladder::LadderConfig;
use rill_transcode::webrtc::{BaselineConfig, BaselineFeeds};
use rill_webrtc::{DerivedFeeds, FeedFn};
use std::sync::Arc;
use std::time::Duration;

/// The feeds, and the renditions' registry (for the API), on `bus`.
pub fn derived_feeds(config: &Config, bus: &Bus) -> (DerivedFeeds, Option<BaselineFeeds>) {
    let opus = OpusFeeds::new(bus.clone());
    let opus: FeedFn = Arc::new(move |_bus: &Bus, path: &StreamPath| match opus.acquire(path) {
        Ok(guard) => Some(Box::new(guard) as Box<dyn std::any::Any + Send>),
        Err(e) => {
            tracing::warn!(stream = %path, error = %e, "no Opus audio for WebRTC viewers");
            None
        }
    });
    let renditions = config.webrtc.transcode.then(|| {
        let t = &config.transcode;
        BaselineFeeds::new(
            bus.clone(),
            BaselineConfig {
                ladder: LadderConfig {
                    rungs: Vec::new(),
                    encoder: t.encoder.clone(),
                    x264_speed_preset: t.speed_preset.clone(),
                    max_lateness: Duration::from_millis(t.max_lateness_ms),
                    encode_delay: Duration::ZERO,
                },
                video_kbps: config.webrtc.transcode_kbps,
            },
        )
    });
    let rendition = renditions.clone().map(|feeds| {
        Arc::new(move |_bus: &Bus, path: &StreamPath| match feeds.acquire(path) {
            Ok(guard) => Some(Box::new(guard) as Box<dyn std::any::Any + Send>),
            Err(e) => {
                tracing::warn!(stream = %path, error = %e, "no WebRTC rendition");
                None
            }
        }) as FeedFn
    });
    (DerivedFeeds { opus: Some(opus), rendition }, renditions)
}
