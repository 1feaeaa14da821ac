//! The live ABR ladder: a live H.264 or HEVC stream on the Bus decoded once and re-encoded to
//! H.264 per rung, each rendition published back onto the Bus as `<source>/<rung>`.
//!
//! ```text
//! Bus ─▶ appsrc ! h26xparse ! avdec_h26x ! tee ─┬─ valve ! queue leaky ! videoscale ! videoconvert ! caps ! x264enc ! h264parse ! appsink ─▶ Bus <source>/<rung>
//!                                               └─ … one branch per rung
//! ```
//!
//! - **Alignment.** Every rendition keyframe is a source keyframe: the encoder's own keyframes
//!   are off (`key-int-max` huge, no scene cuts) and a `GstForceKeyUnit` event is sent into each
//!   encoder just before the picture of each source keyframe. A branch starts at a source
//!   keyframe. Rendition PTS = source PTS exactly (looked up by pipeline time), DTS = PTS (no
//!   B-frames with `tune=zerolatency`).
//! - **Never blocks ingest.** The ladder reads the Bus as a service and pushes into a
//!   non-blocking appsrc; past [`MAX_QUEUED_INPUT`] queued frames it drops input up to the next
//!   keyframe (counted in [`LadderSnapshot::input_dropped`]). The source itself is not touched.
//! - **Overload.** Each rung's lateness is how far (in source arrival time) its latest output is
//!   behind the latest source frame. When some rung stays later than
//!   [`LadderConfig::max_lateness`] for [`OVERLOAD_SUSTAIN`], the most expensive running rung
//!   is dropped (its valve closes, its Bus stream ends); one rung per cool-down. With every
//!   rung dropped the ladder ends with [`TranscodeError::Overloaded`]. The policy is sans-IO
//!   (`overload`, unit-tested on a virtual clock); this module measures and applies it.
//! - **Failures.** A GStreamer error ends the ladder: logged with the element path and the
//!   stream, every rendition's Bus stream closed, the error returned. Nothing panics, no other
//!   stream is affected. The ladder ends when the source stream ends (after draining) and can be
//!   started again.
//! - **Source changes.** A publisher reconnecting with other settings (new tracks on the same
//!   Bus stream) rebuilds the pipeline; renditions whose rung is unchanged keep their Bus
//!   stream (and viewers), the others end.

use crate::overload::{self, OverloadPolicy};
use crate::timeline::Timeline;
use crate::TranscodeError;
use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::{AppSink, AppSinkCallbacks, AppSrc};
use rill_media::sync::lock;
use rill_media::{AvcConfig, Bus, BusError, CodecConfig, Delivery, Frame, MediaTime, Publisher, PublisherInfo};
use rill_media::{Feed, RenditionName, StreamPath, Subscriber, TrackId, Tracks};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// One rendition of the ladder.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rung {
    /// Path segment of the rendition: `<source>/<name>` (e.g. `live/cam/720p`).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
}

impl Rung {
    pub fn new(name: &str, width: u32, height: u32, video_kbps: u32) -> Rung {
        Rung { name: name.to_string(), width, height, video_kbps }
    }
}

/// The default ladder (bitrates after Apple's HLS authoring guide): 1080p 6000, 720p 3000,
/// 480p 1500, 360p 730 kbit/s.
pub fn default_rungs() -> Vec<Rung> {
    vec![
        Rung::new("1080p", 1920, 1080, 6000),
        Rung::new("720p", 1280, 720, 3000),
        Rung::new("480p", 854, 480, 1500),
        Rung::new("360p", 640, 360, 730),
    ]
}

/// How the ladder encodes.
#[derive(Clone, Debug)]
pub struct LadderConfig {
    pub rungs: Vec<Rung>,
    /// The H.264 encoder element: `x264enc` (default), or `nvh264enc`, `vaapih264enc`,
    /// `qsvh264enc`… (only properties the element has are set).
    pub encoder: String,
    /// x264's `speed-preset` (`ultrafast` … `veryslow`); default `veryfast`.
    pub x264_speed_preset: String,
    /// A rung this far behind the source for [`OVERLOAD_SUSTAIN`] means overload.
    pub max_lateness: Duration,
    /// Holds every picture this long before each rung's encoder (an `identity sleep-time`):
    /// zero in production. Tests use it to make a rung that cannot keep real time on any
    /// machine, however fast.
    pub encode_delay: Duration,
}

impl Default for LadderConfig {
    fn default() -> Self {
        LadderConfig {
            rungs: default_rungs(),
            encoder: "x264enc".into(),
            x264_speed_preset: "veryfast".into(),
            max_lateness: Duration::from_millis(1500),
            encode_delay: Duration::ZERO,
        }
    }
}

/// The rungs to encode for a `source` of (width, height): those strictly below the source's
/// height (the source itself is the top rendition), widths from the source's aspect ratio
/// (even, rounded), highest first.
pub fn plan(source: (u32, u32), rungs: &[Rung]) -> Vec<Rung> {
    let (sw, sh) = (source.0 as u64, source.1 as u64);
    if sw == 0 || sh == 0 {
        return Vec::new();
    }
    let mut out: Vec<Rung> = rungs
        .iter()
        .filter(|r| (r.height as u64) < sh && r.height >= 2)
        .map(|r| {
            let height = r.height & !1;
            let width = ((sw * height as u64 + sh) / (2 * sh) * 2).max(2) as u32;
            Rung { name: r.name.clone(), width, height, video_kbps: r.video_kbps }
        })
        .collect();
    out.sort_by(|a, b| b.height.cmp(&a.height).then(b.video_kbps.cmp(&a.video_kbps)));
    out
}

/// Most source frames waiting in the appsrc before input is dropped up to the next keyframe.
pub const MAX_QUEUED_INPUT: u64 = 90;
pub use crate::overload::OVERLOAD_SUSTAIN;
/// How long the ladder may take to drain once the source ended.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Consecutive undecodable frames before the decoder errors out (garbage input).
const MAX_DECODE_ERRORS: i32 = 10;

/// Where a rung stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RungState {
    /// Built, no output yet.
    Starting,
    Running,
    /// Dropped because the machine could not keep real time.
    DroppedOverload,
    /// The ladder failed (GStreamer error).
    Failed,
    /// The source ended.
    Ended,
}

impl RungState {
    pub fn as_str(self) -> &'static str {
        match self {
            RungState::Starting => "starting",
            RungState::Running => "running",
            RungState::DroppedOverload => "dropped_overload",
            RungState::Failed => "failed",
            RungState::Ended => "ended",
        }
    }

    fn from_u8(v: u8) -> RungState {
        [RungState::Starting, RungState::Running, RungState::DroppedOverload, RungState::Failed, RungState::Ended]
            .get(v as usize)
            .copied()
            .unwrap_or(RungState::Failed)
    }
}

/// A rung as the API shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RungSnapshot {
    pub name: String,
    /// Its Bus path, `live/<stream>/<name>`.
    pub path: StreamPath,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
    pub state: RungState,
    /// Output frames per second over the last second or so.
    pub fps: f64,
    /// How far its latest output is behind the latest source frame (arrival time).
    pub lateness_ms: u64,
    /// Added latency of its latest frame: published minus the source frame's arrival.
    pub latency_ms: u64,
    /// Frames published.
    pub frames: u64,
}

/// The ladder as the API shows it.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LadderSnapshot {
    pub rungs: Vec<RungSnapshot>,
    /// Source video frames received from the Bus.
    pub input_frames: u64,
    /// Source video frames dropped because the decoder was behind.
    pub input_dropped: u64,
    /// Why the ladder ended, when it failed.
    pub error: Option<String>,
}

/// Live state of a ladder, shared with the API (`GET /api/v1/streams`). Cheap to read.
#[derive(Debug, Default)]
pub struct LadderStatus {
    rungs: Mutex<Vec<Arc<RungStatus>>>,
    input_frames: AtomicU64,
    input_dropped: AtomicU64,
    error: Mutex<Option<String>>,
}

#[derive(Debug)]
struct RungStatus {
    rung: Rung,
    path: StreamPath,
    state: AtomicU8,
    frames: AtomicU64,
    fps_milli: AtomicU64,
    lateness_ms: AtomicU64,
    latency_ms: AtomicU64,
    /// Arrival (ns after the session's start) of the source frame of the latest output; 0: none yet.
    out_arrival_ns: AtomicU64,
}

impl RungStatus {
    fn state(&self) -> RungState {
        RungState::from_u8(self.state.load(Ordering::Relaxed))
    }

    fn set_state(&self, state: RungState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }
}

impl LadderStatus {
    pub fn new() -> Arc<LadderStatus> {
        Arc::default()
    }

    pub fn snapshot(&self) -> LadderSnapshot {
        LadderSnapshot {
            rungs: lock(&self.rungs)
                .iter()
                .map(|r| RungSnapshot {
                    name: r.rung.name.clone(),
                    path: r.path.clone(),
                    width: r.rung.width,
                    height: r.rung.height,
                    video_kbps: r.rung.video_kbps,
                    state: r.state(),
                    fps: r.fps_milli.load(Ordering::Relaxed) as f64 / 1000.0,
                    lateness_ms: r.lateness_ms.load(Ordering::Relaxed),
                    latency_ms: r.latency_ms.load(Ordering::Relaxed),
                    frames: r.frames.load(Ordering::Relaxed),
                })
                .collect(),
            input_frames: self.input_frames.load(Ordering::Relaxed),
            input_dropped: self.input_dropped.load(Ordering::Relaxed),
            error: lock(&self.error).clone(),
        }
    }
}

/// What a ladder makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The ABR renditions below the source: `live/<name>/<rung>`.
    Abr,
    /// One Constrained Baseline rendition at the source's size, for WebRTC viewers that cannot
    /// decode the source's video: `live/<name>/webrtc` (see [`crate::webrtc`]).
    WebRtc { video_kbps: u32 },
}

/// Runs the ladder of `source` until the source ends (`Ok`), a GStreamer error, or an
/// overload that dropped every rung (`Err`). Renditions are published as
/// `live/<stream>/<rung>`; `status` is updated as it goes. Call it again to restart.
pub async fn run_ladder(
    bus: Bus,
    source: StreamPath,
    config: LadderConfig,
    status: Arc<LadderStatus>,
) -> Result<(), TranscodeError> {
    run(bus, source, config, status, Kind::Abr).await
}

/// Runs the WebRTC rendition of `source` (`live/<name>/webrtc`: Constrained Baseline H.264 at
/// the source's picture size, `video_kbps`, keyframes on the source's) like [`run_ladder`]
/// runs a ladder: until the source ends, an error, or the task is dropped.
pub async fn run_webrtc_rendition(
    bus: Bus,
    source: StreamPath,
    config: LadderConfig,
    video_kbps: u32,
    status: Arc<LadderStatus>,
) -> Result<(), TranscodeError> {
    run(bus, source, config, status, Kind::WebRtc { video_kbps }).await
}

async fn run(
    bus: Bus,
    source: StreamPath,
    config: LadderConfig,
    status: Arc<LadderStatus>,
    kind: Kind,
) -> Result<(), TranscodeError> {
    let span = match kind {
        Kind::Abr => tracing::info_span!("ladder", stream = %source),
        Kind::WebRtc { .. } => tracing::info_span!("webrtc_rendition", stream = %source),
    };
    *lock(&status.error) = None;
    let mut ladder =
        Ladder { bus, path: source.to_string(), source, config, status: status.clone(), outputs: HashMap::new(), kind };
    let result = ladder.run().instrument(span.clone()).await;
    let final_state = if result.is_ok() { RungState::Ended } else { RungState::Failed };
    for (_, output) in ladder.outputs.drain() {
        if output.status.state() != RungState::DroppedOverload {
            output.status.set_state(final_state);
        }
        output.close(&ladder.bus);
    }
    if let Err(e) = &result {
        span.in_scope(|| tracing::warn!(error = %e, "ladder ended"));
        *lock(&status.error) = Some(e.to_string());
    } else {
        span.in_scope(|| tracing::info!("ladder ended with its source"));
    }
    result
}

/// A rendition's Bus publisher, kept across pipeline rebuilds while its rung stays the same.
struct Output {
    path: StreamPath,
    rung: Rung,
    publisher: Mutex<Option<Publisher>>,
    /// The avcC currently announced.
    record: Mutex<Option<Bytes>>,
    status: Arc<RungStatus>,
}

impl Output {
    /// Ends the rendition's Bus stream now (its viewers get `Ended`).
    fn close(&self, bus: &Bus) {
        if lock(&self.publisher).take().is_some() {
            bus.close(&self.path);
        }
    }
}

struct Ladder {
    bus: Bus,
    source: StreamPath,
    /// `source` as text, for errors and logs.
    path: String,
    config: LadderConfig,
    status: Arc<LadderStatus>,
    outputs: HashMap<String, Arc<Output>>,
    kind: Kind,
}

impl Drop for Ladder {
    /// A ladder task aborted mid-run still ends its renditions' Bus streams at once.
    fn drop(&mut self) {
        for (_, output) in self.outputs.drain() {
            if matches!(output.status.state(), RungState::Starting | RungState::Running) {
                output.status.set_state(RungState::Ended);
            }
            output.close(&self.bus);
        }
    }
}

/// What ended a pipeline session.
enum Next {
    Tracks(Arc<Tracks>),
    Ended,
}

impl Ladder {
    fn bus_error(&self, source: BusError) -> TranscodeError {
        TranscodeError::Bus { stream: self.path.clone(), source }
    }

    async fn run(&mut self) -> Result<(), TranscodeError> {
        crate::init()?;
        if !self.config.encoder.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(TranscodeError::Pipeline {
                stream: self.path.clone(),
                message: format!("invalid encoder element name {:?}", self.config.encoder),
            });
        }
        let mut sub = self.bus.subscribe_service(&self.source).map_err(|e| self.bus_error(e))?;
        let mut tracks = loop {
            match sub.recv().await.map_err(|e| self.bus_error(e))? {
                Delivery::Tracks(t) => break t,
                Delivery::Frames(_) => {}
                Delivery::Ended => return Ok(()),
            }
        };
        loop {
            let video = SourceVideo::from_tracks(&tracks).ok_or_else(|| TranscodeError::Unsupported {
                stream: self.path.clone(),
                what: tracks.video.as_ref().map_or("a stream without video".into(), |c| format!("{} video", c.name())),
            })?;
            let rungs = match self.kind {
                Kind::Abr => plan((video.width, video.height), &self.config.rungs),
                Kind::WebRtc { video_kbps } => {
                    vec![Rung::new(rill_media::path::WEBRTC_FEED, video.width & !1, video.height & !1, video_kbps)]
                }
            };
            self.prepare_outputs(&rungs)?;
            let next = if rungs.is_empty() {
                tracing::info!(width = video.width, height = video.height, "no rung below the source");
                idle_until_change(&mut sub, &tracks).await.map_err(|e| self.bus_error(e))?
            } else {
                tracing::info!(
                    codec = video.codec,
                    width = video.width,
                    height = video.height,
                    rungs = ?rungs.iter().map(|r| format!("{}={}x{}@{}k", r.name, r.width, r.height, r.video_kbps)).collect::<Vec<_>>(),
                    encoder = %self.config.encoder,
                    "ladder starting"
                );
                let mut session = Session::start(self, &video, &rungs)?;
                let next = session.run(&mut sub, &tracks).await;
                session.stop();
                next?
            };
            match next {
                Next::Tracks(t) => tracks = t,
                Next::Ended => return Ok(()),
            }
        }
    }

    /// Publishes `<source>/<rung>` for each rung (keeping unchanged ones), closes the others,
    /// and resets the status.
    fn prepare_outputs(&mut self, rungs: &[Rung]) -> Result<(), TranscodeError> {
        self.outputs.retain(|name, output| {
            let keep = rungs.iter().any(|r| r == &output.rung) && lock(&output.publisher).is_some();
            if !keep {
                output.close(&self.bus);
                let _ = name;
            }
            keep
        });
        // The status lists every rung before any new rendition appears on the Bus, so whoever
        // sees a rendition (a player, the API) also finds its status.
        let mut fresh = Vec::new();
        for rung in rungs {
            if self.outputs.contains_key(&rung.name) {
                continue;
            }
            let path = match self.kind {
                Kind::Abr => {
                    let rendition = RenditionName::new(rung.name.as_str())
                        .map_err(|e| TranscodeError::Pipeline { stream: self.path.clone(), message: e.to_string() })?;
                    StreamPath::rendition(self.source.name.clone(), rendition)
                }
                Kind::WebRtc { .. } => self.source.with_feed(Feed::WebRtc),
            };
            let status = Arc::new(RungStatus {
                rung: rung.clone(),
                path: path.clone(),
                state: AtomicU8::new(RungState::Starting as u8),
                frames: AtomicU64::new(0),
                fps_milli: AtomicU64::new(0),
                lateness_ms: AtomicU64::new(0),
                latency_ms: AtomicU64::new(0),
                out_arrival_ns: AtomicU64::new(0),
            });
            fresh.push((rung.clone(), path, status));
        }
        *lock(&self.status.rungs) = rungs
            .iter()
            .filter_map(|r| match self.outputs.get(&r.name) {
                Some(output) => Some(output.status.clone()),
                None => fresh.iter().find(|(rung, ..)| rung.name == r.name).map(|(.., status)| status.clone()),
            })
            .collect();
        for (rung, path, status) in fresh {
            let publisher = self
                .bus
                .publish(&path, PublisherInfo { protocol: "transcode", peer: self.path.clone() })
                .map_err(|e| self.bus_error(e))?;
            let output = Output {
                path,
                rung: rung.clone(),
                publisher: Mutex::new(Some(publisher)),
                record: Mutex::new(None),
                status,
            };
            self.outputs.insert(rung.name.clone(), Arc::new(output));
        }
        Ok(())
    }
}

/// What the ladder decodes: H.264 (avcC) or HEVC (hvcC), with the picture size.
struct SourceVideo {
    codec: &'static str,
    caps: gst::Caps,
    parse_and_decode: &'static str,
    width: u32,
    height: u32,
}

impl SourceVideo {
    fn from_tracks(tracks: &Tracks) -> Option<SourceVideo> {
        let video = tracks.video.as_ref()?;
        let (codec, record, format, parse_and_decode) = match video {
            CodecConfig::Avc(c) => ("h264", &c.record, "avc", "h264parse ! avdec_h264"),
            CodecConfig::Hevc { record } => ("h265", record, "hvc1", "h265parse ! avdec_h265"),
            _ => return None,
        };
        let (width, height) = video.picture_size()?;
        let caps = gst::Caps::builder(if codec == "h264" { "video/x-h264" } else { "video/x-h265" })
            .field("stream-format", format)
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(record.clone()))
            .build();
        Some(SourceVideo { codec, caps, parse_and_decode, width, height })
    }
}

/// Waits for tracks that differ from `current` (or the end), discarding frames.
async fn idle_until_change(sub: &mut Subscriber, current: &Tracks) -> Result<Next, BusError> {
    loop {
        match sub.recv().await? {
            Delivery::Tracks(t) if t.video != current.video => return Ok(Next::Tracks(t)),
            Delivery::Ended => return Ok(Next::Ended),
            _ => {}
        }
    }
}

/// A source frame in flight, by pipeline time.
#[derive(Clone, Copy, Debug)]
struct SourceFrame {
    pts: MediaTime,
    keyframe: bool,
    arrival_ns: u64,
}

/// What the feeder shares with the pipeline's streaming threads.
struct Shared {
    stream: String,
    encoder: String,
    started: Instant,
    timeline: Mutex<Timeline>,
    frames: Mutex<BTreeMap<u64, SourceFrame>>,
    first_arrival_ns: AtomicU64,
    last_arrival_ns: AtomicU64,
}

impl Shared {
    fn since_start(&self) -> u64 {
        (self.started.elapsed().as_nanos() as u64).max(1)
    }

    fn is_keyframe(&self, pts: gst::ClockTime) -> bool {
        lock(&self.frames).get(&pts.nseconds()).is_some_and(|f| f.keyframe)
    }
}

struct Branch {
    output: Arc<Output>,
    valve: gst::Element,
}

/// One pipeline: built for a source configuration, torn down when it changes or ends.
struct Session {
    path: String,
    pipeline: gst::Pipeline,
    src: AppSrc,
    shared: Arc<Shared>,
    branches: Vec<Branch>,
    policy: OverloadPolicy,
    dropping: bool,
    warned_drop: Option<Instant>,
    fps_at: (Instant, Vec<u64>),
    status: Arc<LadderStatus>,
    bus: Bus,
}

fn force_key_unit() -> gst::Event {
    let s = gst::Structure::builder("GstForceKeyUnit").field("all-headers", true).field("count", 0u32).build();
    gst::event::CustomDownstream::new(s)
}

/// Sets `name` from text when the element has it (encoders differ in their properties).
fn set_if_exists(element: &gst::Element, name: &str, value: &str) {
    if element.find_property(name).is_some() {
        element.set_property_from_str(name, value);
    }
}

fn configure_encoder(enc: &gst::Element, config: &LadderConfig, rung: &Rung) {
    if enc.type_().name() == "GstX264Enc" {
        enc.set_property_from_str("tune", "zerolatency");
        enc.set_property_from_str("speed-preset", &config.x264_speed_preset);
        enc.set_property("bitrate", rung.video_kbps);
        enc.set_property("vbv-buf-capacity", 1000u32);
        // Keyframes only where the source has them: no periodic or scene-cut IDRs.
        enc.set_property("key-int-max", i32::MAX as u32);
        enc.set_property("option-string", "scenecut=0:min-keyint=1");
        return;
    }
    // Hardware encoders: bitrate in kbit/s, no periodic keyframes where the element says how.
    set_if_exists(enc, "bitrate", &rung.video_kbps.to_string());
    set_if_exists(enc, "gop-size", "-1");
    set_if_exists(enc, "keyframe-period", "0");
    set_if_exists(enc, "zerolatency", "true");
    set_if_exists(enc, "bframes", "0");
    set_if_exists(enc, "b-frames", "0");
    set_if_exists(enc, "max-bframes", "0");
}

impl Session {
    fn start(ladder: &Ladder, video: &SourceVideo, rungs: &[Rung]) -> Result<Session, TranscodeError> {
        let path = ladder.path.clone();
        let config = &ladder.config;
        let pipeline_error = |message: String| TranscodeError::Pipeline { stream: path.clone(), message };
        let queue_ns = (config.max_lateness * 2 + Duration::from_millis(500)).as_nanos() as u64;
        let mut description = format!(
            "appsrc name=src is-live=true format=time do-timestamp=false ! {} name=decoder \
             max-errors={MAX_DECODE_ERRORS} output-corrupt=false ! tee name=t allow-not-linked=true",
            video.parse_and_decode
        );
        // The WebRTC rendition is what every WebRTC H.264 decoder takes.
        let profile = match ladder.kind {
            Kind::Abr => "",
            Kind::WebRtc { .. } => "video/x-h264,profile=constrained-baseline ! ",
        };
        let delay = match config.encode_delay.as_micros() {
            0 => String::new(),
            us => format!("identity sleep-time={} silent=true ! ", us.min(u32::MAX as u128)),
        };
        for (i, rung) in rungs.iter().enumerate() {
            description.push_str(&format!(
                " t. ! valve name=valve{i} drop-mode=forward-sticky-events ! queue name=queue{i} leaky=downstream max-size-buffers=0 \
                 max-size-bytes=0 max-size-time={queue_ns} ! videoscale add-borders=false ! videoconvert \
                 ! video/x-raw,width={w},height={h},pixel-aspect-ratio=1/1 ! {delay}{enc} name=enc{i} \
                 ! {profile}h264parse config-interval=-1 ! video/x-h264,stream-format=avc,alignment=au \
                 ! appsink name=sink{i} sync=false",
                w = rung.width,
                h = rung.height,
                enc = config.encoder,
            ));
        }
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| pipeline_error(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| pipeline_error("not a pipeline".into()))?;
        pipeline.set_property("name", format!("ladder:{path}"));
        let by_name = |name: &str| pipeline.by_name(name).ok_or_else(|| pipeline_error(format!("no element {name}")));
        let src = by_name("src")?.downcast::<AppSrc>().map_err(|_| pipeline_error("src is not an appsrc".into()))?;
        src.set_caps(Some(&video.caps));
        src.set_property("block", false);
        let shared = Arc::new(Shared {
            stream: path.clone(),
            encoder: config.encoder.clone(),
            started: Instant::now(),
            timeline: Mutex::new(Timeline::default()),
            frames: Mutex::new(BTreeMap::new()),
            first_arrival_ns: AtomicU64::new(0),
            last_arrival_ns: AtomicU64::new(0),
        });
        let mut branches = Vec::new();
        for (i, rung) in rungs.iter().enumerate() {
            let output = ladder.outputs.get(&rung.name).ok_or_else(|| pipeline_error("no output".into()))?.clone();
            output.status.out_arrival_ns.store(0, Ordering::Relaxed);
            *lock(&output.record) = None;
            let enc = by_name(&format!("enc{i}"))?;
            configure_encoder(&enc, config, rung);
            // Each branch starts on a source keyframe, and every source keyframe is forced.
            let sink_pad = enc.static_pad("sink").ok_or_else(|| pipeline_error("encoder without sink pad".into()))?;
            let probe_shared = shared.clone();
            let started = AtomicBool::new(false);
            sink_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
                let Some(pts) = info.buffer().and_then(|b| b.pts()) else { return gst::PadProbeReturn::Ok };
                if probe_shared.is_keyframe(pts) {
                    started.store(true, Ordering::Relaxed);
                    pad.send_event(force_key_unit());
                } else if !started.load(Ordering::Relaxed) {
                    return gst::PadProbeReturn::Drop;
                }
                gst::PadProbeReturn::Ok
            });
            let sink =
                by_name(&format!("sink{i}"))?.downcast::<AppSink>().map_err(|_| pipeline_error("sink".into()))?;
            let sink_shared = shared.clone();
            let sink_output = output.clone();
            sink.set_callbacks(
                AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        publish_sample(&sink_shared, &sink_output, &sample);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            branches.push(Branch { output, valve: by_name(&format!("valve{i}"))? });
        }
        pipeline.set_state(gst::State::Playing).map_err(|e| pipeline_error(format!("cannot start: {e}")))?;
        Ok(Session {
            path,
            pipeline,
            src,
            shared,
            fps_at: (Instant::now(), vec![0; branches.len()]),
            branches,
            policy: OverloadPolicy::new(config.max_lateness),
            dropping: false,
            warned_drop: None,
            status: ladder.status.clone(),
            bus: ladder.bus.clone(),
        })
    }

    async fn run(&mut self, sub: &mut Subscriber, tracks: &Tracks) -> Result<Next, TranscodeError> {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                delivery = sub.recv() => match delivery {
                    Ok(Delivery::Frames(frames)) => {
                        for frame in frames.into_iter().filter(Frame::is_video) {
                            self.feed(frame)?;
                        }
                    }
                    Ok(Delivery::Tracks(t)) if t.video == tracks.video => {}
                    Ok(Delivery::Tracks(t)) => {
                        tracing::info!("source tracks changed: rebuilding the ladder");
                        self.drain().await?;
                        return Ok(Next::Tracks(t));
                    }
                    Ok(Delivery::Ended) => {
                        self.drain().await?;
                        return Ok(Next::Ended);
                    }
                    Err(source) => return Err(TranscodeError::Bus { stream: self.path.clone(), source }),
                },
                _ = tick.tick() => {
                    self.poll_messages()?;
                    self.check_overload()?;
                }
            }
        }
    }

    /// Hands one source frame to the pipeline without waiting.
    fn feed(&mut self, frame: Frame) -> Result<(), TranscodeError> {
        let arrival_ns = self.shared.since_start();
        let _ = self.shared.first_arrival_ns.compare_exchange(0, arrival_ns, Ordering::Relaxed, Ordering::Relaxed);
        self.shared.last_arrival_ns.store(arrival_ns, Ordering::Relaxed);
        self.status.input_frames.fetch_add(1, Ordering::Relaxed);
        if frame.keyframe {
            self.dropping = false;
        }
        if !self.dropping && self.src.current_level_buffers() >= MAX_QUEUED_INPUT {
            self.dropping = true;
            if self.warned_drop.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                self.warned_drop = Some(Instant::now());
                tracing::warn!(
                    queued = MAX_QUEUED_INPUT,
                    dropped_so_far = self.status.input_dropped.load(Ordering::Relaxed),
                    "decoder behind: dropping input until the next keyframe"
                );
            }
        }
        if self.dropping {
            self.status.input_dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let (pts, dts) = {
            let mut timeline = lock(&self.shared.timeline);
            (timeline.gst_time(frame.pts), timeline.gst_time(frame.dts))
        };
        let Some(pts) = pts else {
            self.status.input_dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        {
            let mut frames = lock(&self.shared.frames);
            frames.insert(pts.nseconds(), SourceFrame { pts: frame.pts, keyframe: frame.keyframe, arrival_ns });
            // Keep 30 s of frames in flight at most.
            while frames.len() > 1
                && frames.first_key_value().is_some_and(|(k, _)| *k + 30_000_000_000 < pts.nseconds())
            {
                frames.pop_first();
            }
        }
        let mut buffer = gst::Buffer::from_slice(frame.payload);
        {
            let buffer = buffer.get_mut().expect("a new buffer is writable");
            buffer.set_pts(pts);
            buffer.set_dts(dts);
            if !frame.keyframe {
                buffer.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        crate::pipeline::push(&self.pipeline, &self.src, buffer, &self.path, "the ladder")
    }

    /// Errors and warnings the pipeline posted; true at end of stream.
    fn poll_messages(&self) -> Result<bool, TranscodeError> {
        crate::pipeline::poll_messages(&self.pipeline, &self.path, "the ladder")
    }

    fn check_overload(&mut self) -> Result<(), TranscodeError> {
        let now = Instant::now();
        let last = self.shared.last_arrival_ns.load(Ordering::Relaxed);
        let first = self.shared.first_arrival_ns.load(Ordering::Relaxed);
        let mut lateness = Vec::with_capacity(self.branches.len());
        for branch in &self.branches {
            let status = &branch.output.status;
            let running = matches!(status.state(), RungState::Starting | RungState::Running);
            let late = overload::lateness(first, last, status.out_arrival_ns.load(Ordering::Relaxed));
            if running {
                status.lateness_ms.store(late.as_millis() as u64, Ordering::Relaxed);
            }
            lateness.push(running.then_some(late));
        }
        let elapsed = now.duration_since(self.fps_at.0);
        if elapsed >= Duration::from_secs(1) {
            for (branch, before) in self.branches.iter().zip(self.fps_at.1.iter_mut()) {
                let frames = branch.output.status.frames.load(Ordering::Relaxed);
                let fps = (frames - *before) as f64 / elapsed.as_secs_f64();
                branch.output.status.fps_milli.store((fps * 1000.0) as u64, Ordering::Relaxed);
                *before = frames;
            }
            self.fps_at.0 = now;
        }
        if let Some(victim) = self.policy.observe(now, &lateness) {
            let branch = &self.branches[victim];
            let output = &branch.output;
            tracing::warn!(
                rung = %output.rung.name,
                lateness_ms = lateness[victim].unwrap_or_default().as_millis() as u64,
                max_lateness_ms = self.policy.max_lateness.as_millis() as u64,
                "cannot keep real time: dropping the most expensive rung"
            );
            branch.valve.set_property("drop", true);
            output.status.set_state(RungState::DroppedOverload);
            output.status.fps_milli.store(0, Ordering::Relaxed);
            output.close(&self.bus);
            if self.branches.iter().all(|b| b.output.status.state() == RungState::DroppedOverload) {
                return Err(TranscodeError::Overloaded { stream: self.path.clone() });
            }
        }
        Ok(())
    }

    /// The source ended: let what is in the pipeline come out, within [`DRAIN_TIMEOUT`].
    async fn drain(&mut self) -> Result<(), TranscodeError> {
        let _ = self.src.end_of_stream();
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while Instant::now() < deadline {
            if self.poll_messages()? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!("the ladder did not drain in {DRAIN_TIMEOUT:?}");
        Ok(())
    }

    fn stop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A buffer's PTS as running time in its sample's segment (appsrc's segment starts at zero,
/// so on the input side running time = PTS).
pub(crate) fn running_time(sample: &gst::SampleRef, buffer: &gst::BufferRef) -> Option<gst::ClockTime> {
    let pts = buffer.pts()?;
    match sample.segment().and_then(|s| s.downcast_ref::<gst::ClockTime>()) {
        Some(segment) => segment.to_running_time(pts),
        None => Some(pts),
    }
}

/// An encoded rendition frame onto the Bus, with its source frame's PTS.
fn publish_sample(shared: &Shared, output: &Output, sample: &gst::SampleRef) {
    let Some(buffer) = sample.buffer() else { return };
    let publisher = lock(&output.publisher);
    let Some(publisher) = publisher.as_ref() else { return };
    if let Some(record) = sample
        .caps()
        .and_then(|c| c.structure(0))
        .and_then(|s| s.get::<gst::Buffer>("codec_data").ok())
        .and_then(|b| b.map_readable().ok().map(|m| Bytes::copy_from_slice(m.as_slice())))
    {
        let mut current = lock(&output.record);
        if current.as_ref() != Some(&record) {
            match AvcConfig::from_record(record.clone()) {
                Ok(config) => {
                    publisher.set_tracks(Tracks {
                        video: Some(CodecConfig::Avc(config)),
                        audio: None,
                        encoder: Some(format!("rill-transcode {}", shared.encoder)),
                    });
                    *current = Some(record);
                }
                Err(e) => {
                    tracing::warn!(stream = %shared.stream, rung = %output.rung.name, error = %e, "encoder gave an unusable avcC");
                    return;
                }
            }
        }
    }
    if lock(&output.record).is_none() {
        return;
    }
    // Encoders may shift buffer times (x264enc adds 1000 h for DTS room) with a segment that
    // compensates: the running time is what equals the source's pipeline time.
    let Some(pts_gst) = running_time(sample, buffer) else { return };
    let source = lock(&shared.frames).get(&pts_gst.nseconds()).copied();
    let (pts, arrival_ns) = match source {
        Some(f) => (f.pts, f.arrival_ns),
        None => {
            // Not a source time (should not happen): map it back to the Bus clock.
            let timeline = lock(&shared.timeline);
            (timeline.media_time(pts_gst, rill_media::Timebase::MPEG), 0)
        }
    };
    let Ok(map) = buffer.map_readable() else { return };
    let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
    publisher.push(Frame {
        track: TrackId::VIDEO,
        pts,
        dts: pts,
        keyframe,
        payload: Bytes::copy_from_slice(map.as_slice()),
    });
    let status = &output.status;
    status.frames.fetch_add(1, Ordering::Relaxed);
    if arrival_ns > 0 {
        let now = shared.since_start();
        status.out_arrival_ns.fetch_max(arrival_ns, Ordering::Relaxed);
        status.latency_ms.store(now.saturating_sub(arrival_ns) / 1_000_000, Ordering::Relaxed);
    }
    let _ = status.state.compare_exchange(
        RungState::Starting as u8,
        RungState::Running as u8,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_skips_rungs_at_or_above_the_source_and_keeps_aspect() {
        let planned = plan((1280, 720), &default_rungs());
        let dims: Vec<_> = planned.iter().map(|r| (r.name.as_str(), r.width, r.height)).collect();
        assert_eq!(dims, vec![("480p", 854, 480), ("360p", 640, 360)]);
        // A 4:3 source: widths follow it, sorted high to low whatever the config order.
        let mut rungs = default_rungs();
        rungs.reverse();
        let planned = plan((1440, 1080), &rungs);
        let dims: Vec<_> = planned.iter().map(|r| (r.width, r.height)).collect();
        assert_eq!(dims, vec![(960, 720), (640, 480), (480, 360)]);
        assert!(plan((640, 360), &default_rungs()).is_empty());
        assert!(plan((0, 0), &default_rungs()).is_empty());
        // Odd results are made even.
        let odd = plan((1000, 750), &[Rung::new("x", 0, 301, 100)]);
        assert_eq!((odd[0].width, odd[0].height), (400, 300));
    }
}
