//! The state every HTTP handler reads: the configuration and a handle on each running
//! subsystem (Bus, stream registry, packagers, catalog, recorder, ladders, cameras, WebRTC,
//! live thumbnails, analytics), built by the composition root (`app`).

use crate::config::Config;
use crate::streams::StreamRegistry;
use crate::thumbnails::LiveThumbnails;
use rill_ingest::rtmp::RtmpStats;
use rill_ingest::srt::SrtStats;
use rill_media::Bus;
use rill_relay::packager::Packagers;
use rill_relay::RelayStats;
use rill_vod::library::Library;
use rill_vod::recorder::Recorder;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// State shared by HTTP handlers.
pub struct AppState {
    pub config: Config,
    pub bus: Bus,
    pub registry: Arc<StreamRegistry>,
    /// The one access decision (keys, tokens, playback modes).
    pub access: Arc<crate::access::AccessControl>,
    pub admin_token: String,
    pub rtmp_stats: Arc<RtmpStats>,
    pub srt_stats: Arc<SrtStats>,
    pub relay_stats: Arc<RelayStats>,
    pub packagers: Arc<Packagers>,
    pub library: Arc<Library>,
    pub recorder: Arc<Recorder>,
    /// Resumable uploads (tus) and their processing queue.
    pub uploads: Arc<rill_vod::upload::Uploads>,
    /// RTSP cameras pulled onto the Bus.
    pub sources: Arc<rill_ingest::rtsp::manager::Cameras>,
    /// Every live stream's ABR ladder.
    pub transcoding: Arc<rill_transcode::manager::LadderManager>,
    /// Live snapshots (`None` when `[thumbnails] enabled = false`).
    pub thumbnails: Option<Arc<LiveThumbnails>>,
    /// WHIP/WHEP sessions on the WebRTC media port.
    pub webrtc: rill_webrtc::WebRtc,
    /// Viewer analytics.
    pub audience: Arc<crate::audience::Audience>,
    /// The WebRTC renditions made for viewers that cannot decode a source's video (`None` when
    /// `[webrtc] transcode = false`).
    pub webrtc_renditions: Option<rill_transcode::webrtc::BaselineFeeds>,
    pub http_stats: HttpStats,
    pub started: Instant,
}

/// Counters of the HTTP surfaces that have no subsystem of their own.
#[derive(Debug, Default)]
pub struct HttpStats {
    pub vod_requests: AtomicU64,
    pub vod_bytes_out: AtomicU64,
    pub api_auth_failures: AtomicU64,
}

/// How long a viewer's request waits for an on-demand source (a camera) to start.
pub const ON_DEMAND_WAIT: Duration = Duration::from_secs(10);
