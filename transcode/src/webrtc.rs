//! The WebRTC video rendition: for WebRTC viewers that cannot decode a source's video (a High
//! or Main H.264 source and a Firefox offer of Baseline only; an HEVC source and a browser
//! without H.265), one Constrained Baseline H.264 rendition per source stream
//! (`live/<name>/webrtc`, made by the ladder's machinery: decode once, one x264 branch at the
//! source's size, keyframes on the source's, PTS = source PTS), started on demand by the first
//! such viewer, shared by all of them, stopped when the last [`BaselineGuard`] drops.

use crate::ladder::{run_webrtc_rendition, LadderConfig, LadderSnapshot, LadderStatus};
use crate::TranscodeError;
use rill_media::sync::lock;
use rill_media::{Bus, BusError, CodecConfig, Feed, StreamPath};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tracing::Instrument;

/// How the rendition is encoded.
#[derive(Clone, Debug)]
pub struct BaselineConfig {
    /// Encoder element, x264 preset and overload threshold, as for the ladder (its rungs are unused).
    pub ladder: LadderConfig,
    pub video_kbps: u32,
}

/// The WebRTC renditions of a Bus. Cheap to clone.
#[derive(Clone)]
pub struct BaselineFeeds {
    bus: Bus,
    config: BaselineConfig,
    feeds: Arc<Mutex<HashMap<StreamPath, Weak<Running>>>>,
}

/// A running rendition; its task is aborted when the last guard lets go of it (the ladder
/// then ends its Bus stream at once).
struct Running {
    source: StreamPath,
    task: tokio::task::AbortHandle,
    status: Arc<LadderStatus>,
    done: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done.load(Ordering::Relaxed) {
            tracing::info!(stream = %self.source, "WebRTC rendition stopped: its last viewer left");
        }
        self.task.abort();
    }
}

/// A viewer's hold on a stream's WebRTC rendition.
pub struct BaselineGuard {
    path: StreamPath,
    _running: Arc<Running>,
}

impl BaselineGuard {
    /// Where the rendition is on the Bus: `live/<name>/webrtc`.
    pub fn path(&self) -> &StreamPath {
        &self.path
    }
}

/// A rendition as the API shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BaselineView {
    pub path: StreamPath,
    /// Viewers holding it.
    pub viewers: usize,
    pub running: bool,
    #[serde(flatten)]
    pub ladder: LadderSnapshot,
}

impl BaselineFeeds {
    pub fn new(bus: Bus, config: BaselineConfig) -> BaselineFeeds {
        BaselineFeeds { bus, config, feeds: Arc::default() }
    }

    /// Makes sure `live/<name>/webrtc` is being made from `source` (H.264 or HEVC video) and
    /// holds it until the guard drops. Returns at once: the rendition appears on the Bus when
    /// the pipeline is built (with its tracks), its first frame at the source's next keyframe.
    /// Must be called within a tokio runtime.
    pub fn acquire(&self, source: &StreamPath) -> Result<BaselineGuard, TranscodeError> {
        let stream = source.to_string();
        let snapshot = self
            .bus
            .stream_snapshot(source)
            .ok_or_else(|| TranscodeError::Bus { stream: stream.clone(), source: BusError::NotLive(source.clone()) })?;
        match &snapshot.tracks.video {
            Some(CodecConfig::Avc(_) | CodecConfig::Hevc { .. }) => {}
            other => {
                return Err(TranscodeError::Unsupported {
                    stream,
                    what: other.as_ref().map_or("a stream without video".into(), |c| format!("{} video", c.name())),
                })
            }
        }
        let path = source.with_feed(Feed::WebRtc);
        let mut feeds = lock(&self.feeds);
        feeds.retain(|_, f| f.strong_count() > 0);
        if let Some(running) = feeds.get(source).and_then(Weak::upgrade) {
            if !running.done.load(Ordering::Relaxed) {
                return Ok(BaselineGuard { path, _running: running });
            }
        }
        crate::init()?;
        let status = LadderStatus::new();
        let done = Arc::new(AtomicBool::new(false));
        let (bus, src, config, st, d) =
            (self.bus.clone(), source.clone(), self.config.clone(), status.clone(), done.clone());
        let span = tracing::info_span!("webrtc_rendition", stream = %source);
        let task = tokio::spawn(
            async move {
                tracing::info!(video_kbps = config.video_kbps, "WebRTC rendition (Constrained Baseline H.264) started");
                if let Err(e) = run_webrtc_rendition(bus, src, config.ladder, config.video_kbps, st).await {
                    tracing::warn!(error = %e, "WebRTC rendition ended");
                }
                d.store(true, Ordering::Relaxed);
            }
            .instrument(span),
        );
        let running = Arc::new(Running { source: source.clone(), task: task.abort_handle(), status, done });
        feeds.insert(source.clone(), Arc::downgrade(&running));
        Ok(BaselineGuard { path, _running: running })
    }

    /// The rendition of `source` while someone holds it.
    pub fn view(&self, source: &StreamPath) -> Option<BaselineView> {
        let running = lock(&self.feeds).get(source).and_then(Weak::upgrade)?;
        Some(BaselineView {
            path: source.with_feed(Feed::WebRtc),
            // The guards, less the one just taken here.
            viewers: Arc::strong_count(&running) - 1,
            running: !running.done.load(Ordering::Relaxed),
            ladder: running.status.snapshot(),
        })
    }
}
