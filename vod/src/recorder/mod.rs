//! The recorder: one Bus service subscriber per live stream that cuts the stream into CMAF
//! (the same segmenter as the live packager) and writes every part to storage as it arrives:
//! `<video-id>/<track>/init-<v>.mp4` and `<video-id>/<track>/<sequence>.m4s` (a segment is its
//! `styp` followed by its parts). A segment is indexed in the catalog once complete and synced,
//! so a crash loses at most the part being written; [`recover`] indexes what a crash left.
//! A publisher reconnecting within the Bus's grace period continues the same recording (with a
//! new init version when its tracks changed).
//!
//! Each recording is two tasks joined by a [`buffer`]: the reader follows the Bus and never
//! waits on I/O (a slow subscriber would fall out of the Bus's ring and lose frames), the
//! writer does the storage writes and catalog updates, retrying while the catalog is
//! unreachable. The buffer holds memory up to a bound and spills to files under the spool
//! directory beyond it ([`spool`]); what does not fit is a gap — counted in
//! [`RecorderStats::frames_lost`], logged, and stored in the video ([`Video::frames_lost`]) —
//! as is a fall behind the Bus's live edge, after which the reader resubscribes. A video is
//! marked ready only once its stream has ended and everything queued was written. A storage
//! error ends that recording as `failed` with the reason; live streaming never waits for the
//! recorder.
//!
//! [`Video::frames_lost`]: crate::catalog::Video::frames_lost

mod buffer;
pub mod spool;

use crate::catalog::{Catalog, CatalogError, NewVideo, SegmentRow, VideoEnd, VideoStatus, Visibility};
use crate::storage::{self, Storage};
use crate::VideoId;
use buffer::Buffer;
use bytes::Bytes;
use dashmap::mapref::entry::Entry as MapEntry;
use dashmap::DashMap;
use rill_media::cmaf::scan::scan_fragments;
use rill_media::cmaf::{fmp4, CmafSubscriber, CmafTrack, Part, SegmenterConfig, SegmenterEvent, TrackKind};
use rill_media::manifest::TrackDescription;
use rill_media::wallclock::iso8601;
use rill_media::{Bus, StreamPath};
use spool::{Entry, Gap, SpoolConfig};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Why a recording stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("writing the recording failed: {0}")]
    Storage(#[from] std::io::Error),
    #[error("indexing the recording failed: {0}")]
    Catalog(#[from] CatalogError),
}

/// Makes a JPEG thumbnail from a video track's init segment followed by its first segment.
pub type Thumbnailer = Arc<dyn Fn(Bytes) -> Result<Bytes, String> + Send + Sync>;

/// The visibility a new recording of stream `name` gets (say, private for a stream that plays
/// with a token only, so that its recordings do too).
pub type VisibilityOf = Arc<dyn Fn(&str) -> Visibility + Send + Sync>;

#[derive(Clone)]
pub struct RecorderConfig {
    pub segmenter: SegmenterConfig,
    pub visibility: VisibilityOf,
    /// `None`: videos have no thumbnail.
    pub thumbnailer: Option<Thumbnailer>,
    /// What a recording holds while its writer waits on storage or the catalog.
    pub spool: SpoolConfig,
    /// Where recordings spill what does not fit in memory (`<dir>/<video-id>/`); emptied when
    /// the recorder starts. `None`: memory only.
    pub spool_dir: Option<PathBuf>,
    /// Called (on the runtime) when a recording became ready: e.g. its storyboard is made.
    pub on_ready: Option<OnReady>,
}

/// What runs when a recording becomes ready.
pub type OnReady = Arc<dyn Fn(VideoId) + Send + Sync>;

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct RecorderStats {
    pub active: AtomicU64,
    pub started: AtomicU64,
    pub failed: AtomicU64,
    pub bytes_written: AtomicU64,
    pub segments_written: AtomicU64,
    /// Frames (of each recording's duration track) lost: the buffer was full, or the reader
    /// fell behind the live edge.
    pub frames_lost: AtomicU64,
    /// Separate losses (each a discontinuity in its video).
    pub gaps: AtomicU64,
    /// Payload bytes spilled to the spool directory.
    pub spilled_bytes: AtomicU64,
}

/// A recording in progress, as the API shows it next to its stream.
#[derive(Debug)]
pub struct ActiveRecording {
    pub video_id: VideoId,
    pub started: SystemTime,
    pub bytes_written: AtomicU64,
    pub segments: AtomicU64,
    /// Frames lost so far (see [`RecorderStats::frames_lost`]).
    pub frames_lost: AtomicU64,
    /// Set when the recording failed (it is then no longer written).
    pub error: Mutex<Option<String>>,
    /// Becomes true when the recording has ended (and its video was marked ended).
    done: watch::Sender<bool>,
}

impl ActiveRecording {
    pub fn failed(&self) -> bool {
        self.error().is_some()
    }

    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn fail(&self, reason: String) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }
}

/// Decides per stream name whether it is recorded.
pub type RecordPolicy = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Records every live stream the policy allows.
pub struct Recorder {
    catalog: Arc<Catalog>,
    storage: Arc<dyn Storage>,
    config: RecorderConfig,
    policy: RecordPolicy,
    /// The current (or last, until the stream starts again) recording of each stream.
    recordings: DashMap<String, Arc<ActiveRecording>>,
    pub stats: RecorderStats,
    /// Recordings being written ([`RecorderStats::active`]), for [`Recorder::wait_idle`].
    running: watch::Sender<u64>,
}

impl Recorder {
    /// Starts recording every stream that starts on `bus` (and those already live). What a
    /// previous run left in the spool directory is removed first (a crash's spills are lost
    /// with it; [`recover`] indexes what reached storage).
    pub fn spawn(
        bus: Bus,
        catalog: Arc<Catalog>,
        storage: Arc<dyn Storage>,
        config: RecorderConfig,
        policy: RecordPolicy,
    ) -> Arc<Recorder> {
        if let Some(dir) = &config.spool_dir {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => tracing::warn!(dir = %dir.display(), "removed recording spills left by an unclean stop"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot clear the recording spool"),
            }
        }
        let recorder = Arc::new(Recorder {
            catalog,
            storage,
            config,
            policy,
            recordings: DashMap::new(),
            stats: RecorderStats::default(),
            running: watch::Sender::new(0),
        });
        let this = recorder.clone();
        tokio::spawn(async move { bus.for_each_started_stream(|path| this.start(&bus, path)).await });
        recorder
    }

    /// The recording of stream `name`: in progress, or the last one if it failed.
    pub fn recording(&self, name: &str) -> Option<Arc<ActiveRecording>> {
        self.recordings.get(name).map(|r| r.clone())
    }

    /// Waits (up to `timeout`) until no recording is running: at shutdown, after the streams
    /// were closed, so the last segments are indexed and the videos marked ready.
    pub async fn wait_idle(&self, timeout: Duration) {
        let mut running = self.running.subscribe();
        let _ = tokio::time::timeout(timeout, running.wait_for(|n| *n == 0)).await;
    }

    /// Counts a recording in (`true`) or out of [`RecorderStats::active`].
    fn set_running(&self, running: bool) {
        self.running.send_modify(|n| {
            *n = if running { *n + 1 } else { n.saturating_sub(1) };
            self.stats.active.store(*n, Ordering::Relaxed);
        });
    }

    /// Whether `id` is being written now.
    pub fn is_recording(&self, id: VideoId) -> bool {
        self.recordings.iter().any(|r| r.video_id == id && !r.failed())
    }

    fn start(self: &Arc<Self>, bus: &Bus, path: &StreamPath) {
        if !path.is_source() {
            return; // renditions and derived feeds are not recorded
        }
        let name = path.name.as_str();
        if !(self.policy)(name) {
            return;
        }
        // One recording per stream session: a lagging announcement must not start a second.
        let started = SystemTime::now();
        let recording = Arc::new(ActiveRecording {
            video_id: VideoId::generate(),
            started,
            bytes_written: AtomicU64::new(0),
            segments: AtomicU64::new(0),
            frames_lost: AtomicU64::new(0),
            error: Mutex::new(None),
            done: watch::Sender::new(false),
        });
        let fresh = match self.recordings.entry(name.to_string()) {
            MapEntry::Occupied(mut current) if current.get().failed() => {
                current.insert(recording.clone());
                true
            }
            MapEntry::Occupied(current) => {
                // The announcement may be a lagging duplicate of this session, or a new session
                // whose predecessor is still indexing its last segment: decide once it is done.
                let mut done = current.get().done.subscribe();
                let (this, bus, path) = (self.clone(), bus.clone(), path.clone());
                tokio::spawn(async move {
                    let _ = done.wait_for(|done| *done).await;
                    if bus.contains(&path) {
                        this.start(&bus, &path);
                    }
                });
                false
            }
            MapEntry::Vacant(slot) => {
                slot.insert(recording.clone());
                true
            }
        };
        if !fresh {
            return;
        }
        let Ok(subscriber) = bus.subscribe_service(path) else {
            self.recordings.remove_if(name, |_, r| Arc::ptr_eq(r, &recording));
            return;
        };
        let this = self.clone();
        let name = name.to_string();
        let bus = bus.clone();
        let span = tracing::info_span!("recorder", stream = %name, video = %recording.video_id);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let cmaf = CmafSubscriber::new(subscriber, this.config.segmenter);
                this.record(&bus, &name, &recording, cmaf).await;
                // A failed recording stays visible (with its reason) until the stream starts again.
                this.recordings.remove_if(&name, |_, r| Arc::ptr_eq(r, &recording) && !r.failed());
                recording.done.send_replace(true);
            },
            span,
        ));
    }

    /// Runs one recording: the reader here, the writer and the spiller as tasks.
    async fn record(self: &Arc<Self>, bus: &Bus, name: &str, recording: &Arc<ActiveRecording>, cmaf: CmafSubscriber) {
        let dir = self.config.spool_dir.as_ref().map(|d| d.join(recording.video_id.as_str()));
        let buffer = Buffer::new(self.config.spool.clone(), dir);
        self.set_running(true);
        let this = self.clone();
        let spiller = tokio::spawn(tracing::Instrument::in_current_span(buffer.clone().spill(move |bytes| {
            this.stats.spilled_bytes.fetch_add(bytes, Ordering::Relaxed);
        })));
        let writer = {
            let (this, name, recording, buffer) = (self.clone(), name.to_string(), recording.clone(), buffer.clone());
            tokio::spawn(tracing::Instrument::in_current_span(
                async move { this.write(&name, &recording, &buffer).await },
            ))
        };
        let stream_ended = self.read(bus, cmaf, recording, &buffer).await;
        buffer.close();
        let written = writer.await.unwrap_or_else(|panic| Err(RecordError::Storage(std::io::Error::other(panic))));
        let _ = spiller.await;
        buffer.remove_dir().await;
        if let Some(end) = self.end_of(recording, written, stream_ended) {
            let id = recording.video_id;
            match retry_transient("marking the video ended", || self.catalog.finish_video(id, &end)).await {
                Err(e) => {
                    tracing::error!(error = %e, "cannot mark the recording as ended; it is recovered at the next start")
                }
                Ok(()) if end.status == VideoStatus::Ready => {
                    if let Some(on_ready) = &self.config.on_ready {
                        on_ready(id);
                    }
                }
                Ok(()) => {}
            }
        }
        self.set_running(false);
    }

    /// How a recording ends: ready only if its stream ended and something was recorded;
    /// `None` if its video was never created.
    fn end_of(
        &self,
        recording: &ActiveRecording,
        written: Result<Option<u64>, RecordError>,
        stream_ended: bool,
    ) -> Option<VideoEnd> {
        let now = unix_ms(SystemTime::now());
        Some(match written {
            Ok(None) => return None,
            Ok(Some(segments)) if segments > 0 && stream_ended => {
                tracing::info!(segments, "recording ready");
                VideoEnd { status: VideoStatus::Ready, error: None, ended_at_ms: now }
            }
            Ok(Some(_)) => {
                let reason = "the stream ended before a complete segment was recorded".to_string();
                tracing::warn!("recording failed: {reason}");
                VideoEnd { status: VideoStatus::Failed, error: Some(reason), ended_at_ms: now }
            }
            Err(e) => {
                tracing::error!(error = %e, "recording failed; the live stream goes on");
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                recording.fail(e.to_string());
                VideoEnd { status: VideoStatus::Failed, error: Some(e.to_string()), ended_at_ms: now }
            }
        })
    }

    /// The reader: Bus → segmenter → buffer, never waiting on I/O. Returns true when the
    /// stream ended, false when the writer gave up first.
    async fn read(&self, bus: &Bus, mut cmaf: CmafSubscriber, recording: &ActiveRecording, buffer: &Buffer) -> bool {
        let stopped = buffer.stopped();
        tokio::pin!(stopped);
        loop {
            let next = tokio::select! {
                biased;
                () = &mut stopped => return false,
                next = cmaf.next() => next,
            };
            let events = match next {
                Ok(Some(events)) => events,
                Ok(None) => return true,
                Err(behind) => {
                    // The loss is measured (and counted) where the stream resumes.
                    tracing::warn!(error = %behind, "the recorder fell behind the live edge and lost frames");
                    buffer.lost_upstream();
                    match bus.subscribe_service(cmaf.path()) {
                        Ok(subscriber) => {
                            cmaf.resubscribe(subscriber);
                            Vec::new()
                        }
                        Err(_) => cmaf.finish(),
                    }
                }
            };
            for event in events {
                let lost = buffer.push(event);
                if lost.gap.frames > 0 || lost.new_gap {
                    self.count_loss(recording, lost.gap, lost.new_gap);
                }
            }
        }
    }

    fn count_loss(&self, recording: &ActiveRecording, gap: Gap, new_gap: bool) {
        self.stats.frames_lost.fetch_add(gap.frames, Ordering::Relaxed);
        recording.frames_lost.fetch_add(gap.frames, Ordering::Relaxed);
        if new_gap {
            self.stats.gaps.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                frames = gap.frames,
                ms = gap.duration.as_millis() as u64,
                "the recording lost frames (its buffer is full or it fell behind the stream); a gap in the video"
            );
        }
    }

    /// The writer: creates the video, then writes and indexes what the buffer hands over.
    /// `Ok(None)` when the video could not be created; `Ok(Some(segments))` once the buffer is
    /// closed and drained. On error the buffer is stopped (the reader ends).
    async fn write(
        &self,
        name: &str,
        recording: &Arc<ActiveRecording>,
        buffer: &Buffer,
    ) -> Result<Option<u64>, RecordError> {
        let id = recording.video_id;
        let title = format!("{name} — {}", human_time(recording.started));
        let new = NewVideo {
            id,
            title: &title,
            stream: name,
            visibility: (self.config.visibility)(name),
            created_at_ms: unix_ms(recording.started),
        };
        if let Err(e) = retry_transient("creating the video", || self.catalog.create_video(&new)).await {
            tracing::error!(error = %e, "cannot record: the catalog refused the new video");
            recording.fail(e.to_string());
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            buffer.stop();
            return Ok(None);
        }
        tracing::info!("recording started");
        self.stats.started.fetch_add(1, Ordering::Relaxed);
        let mut writer = RecordingWriter::new(id, self.storage.clone(), self.catalog.clone(), recording.clone());
        writer.thumbnailer = self.config.thumbnailer.clone();
        let outcome = async {
            while let Some(entry) = buffer.next().await {
                match entry {
                    Entry::Event(event) => writer.apply(event, &self.stats).await?,
                    Entry::Gap(gap) => writer.gap(gap, &self.stats).await?,
                }
            }
            Ok::<(), RecordError>(())
        }
        .await;
        if outcome.is_err() {
            buffer.stop(); // a failed recording stops reading the stream at once
        }
        outcome.map(|()| Some(writer.segments))
    }
}

/// Runs a catalog call until it succeeds or fails for good: while the database cannot be
/// reached ([`CatalogError::is_transient`]) it is retried, backing off up to 5 s, and the
/// recording's buffer holds what arrives meanwhile.
async fn retry_transient<T, F, Fut>(what: &str, mut call: F) -> Result<T, CatalogError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CatalogError>>,
{
    let mut delay = Duration::from_millis(100);
    loop {
        match call().await {
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what}: the catalog is unreachable");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            result => return result,
        }
    }
}

/// The segment of one track being written.
struct OpenSegment {
    key: String,
    row: SegmentRow,
}

/// Writes one recording's events to storage and the catalog.
struct RecordingWriter {
    id: VideoId,
    storage: Arc<dyn Storage>,
    catalog: Arc<Catalog>,
    recording: Arc<ActiveRecording>,
    /// Init version of the current tracks (-1 before the first).
    init_version: i64,
    /// The current tracks; the first makes the video's duration.
    kinds: Vec<TrackKind>,
    open: HashMap<TrackKind, OpenSegment>,
    /// Tracks whose next segment follows a gap (a discontinuity).
    after_gap: HashSet<TrackKind>,
    segments: u64,
    /// Makes the video's thumbnail from its first video segment (then set to `None`).
    thumbnailer: Option<Thumbnailer>,
}

impl RecordingWriter {
    fn new(id: VideoId, storage: Arc<dyn Storage>, catalog: Arc<Catalog>, recording: Arc<ActiveRecording>) -> Self {
        RecordingWriter {
            id,
            storage,
            catalog,
            recording,
            init_version: -1,
            kinds: Vec::new(),
            open: HashMap::new(),
            after_gap: HashSet::new(),
            segments: 0,
            thumbnailer: None,
        }
    }

    async fn apply(&mut self, event: SegmenterEvent, stats: &RecorderStats) -> Result<(), RecordError> {
        match event {
            SegmenterEvent::Tracks(tracks) => self.set_tracks(&tracks).await,
            SegmenterEvent::Unsupported { kind, reason } => {
                tracing::warn!(track = kind.as_str(), %reason, "track not recorded");
                Ok(())
            }
            SegmenterEvent::Part(part) => self.write_part(part, stats).await,
        }
    }

    async fn set_tracks(&mut self, tracks: &[Arc<CmafTrack>]) -> Result<(), RecordError> {
        self.init_version += 1;
        self.open.clear();
        self.kinds = tracks.iter().map(|t| t.kind).collect();
        for track in tracks {
            let key = init_key(self.id, track.kind, self.init_version);
            let init = track.init.clone();
            storage::run(&self.storage, move |s| s.put(&key, &init)).await?;
            let description = TrackDescription::new(track.kind, &track.codec, track.timescale);
            let info = serde_json::to_string(&description).expect("descriptions serialize");
            let (catalog, id, version) = (&self.catalog, self.id, self.init_version);
            retry_transient("indexing an init segment", || catalog.add_init(id, track.kind.as_str(), version, &info))
                .await?;
        }
        Ok(())
    }

    /// Media was lost here: the open segments end (indexed as they are), the next segment of
    /// each track is a discontinuity, and the loss is added to the video.
    async fn gap(&mut self, gap: Gap, stats: &RecorderStats) -> Result<(), RecordError> {
        for kind in self.kinds.clone() {
            if let Some(open) = self.open.remove(&kind) {
                self.index_segment(kind, open, stats).await?;
            }
        }
        self.after_gap.extend(self.kinds.iter().copied());
        let (frames, ms) = (gap.frames as i64, gap.duration.as_millis() as i64);
        let (catalog, id) = (&self.catalog, self.id);
        retry_transient("recording a gap", || catalog.add_gap(id, frames, ms)).await?;
        Ok(())
    }

    async fn write_part(&mut self, part: Part, stats: &RecorderStats) -> Result<(), RecordError> {
        if part.index == 0 {
            let row = SegmentRow {
                track: part.kind.as_str().into(),
                sequence: part.msn as i64,
                init_version: self.init_version,
                discontinuity: part.discontinuity | self.after_gap.remove(&part.kind),
                start_ticks: part.decode_time as i64,
                duration_ticks: 0,
                timescale: part.timescale as i64,
                size_bytes: 0,
                wall_clock_ms: unix_ms(part.wall_clock),
            };
            let key = segment_key(self.id, part.kind, part.msn);
            self.open.insert(part.kind, OpenSegment { key, row });
        }
        // A part whose segment start was not seen (tracks changed mid-segment) is skipped.
        let Some(open) = self.open.get_mut(&part.kind) else { return Ok(()) };
        let key = open.key.clone();
        let bytes = part.bytes.clone();
        let first = part.index == 0;
        let written = bytes.len() + if first { fmp4::segment_type().len() } else { 0 };
        storage::run(&self.storage, move |s| {
            if first {
                s.append(&key, &[&fmp4::segment_type(), &bytes])
            } else {
                s.append(&key, &[&bytes])
            }
        })
        .await?;
        open.row.duration_ticks += part.duration as i64;
        open.row.size_bytes += written as i64;
        stats.bytes_written.fetch_add(written as u64, Ordering::Relaxed);
        self.recording.bytes_written.fetch_add(written as u64, Ordering::Relaxed);
        if part.ends_segment {
            let open = self.open.remove(&part.kind).expect("checked above");
            self.index_segment(part.kind, open, stats).await?;
        }
        Ok(())
    }

    /// Syncs a complete segment and indexes it.
    async fn index_segment(
        &mut self,
        kind: TrackKind,
        open: OpenSegment,
        stats: &RecorderStats,
    ) -> Result<(), RecordError> {
        let key = open.key;
        storage::run(&self.storage, move |s| s.sync(&key)).await?;
        let counts_duration = self.kinds.first() == Some(&kind);
        let (catalog, id, row) = (&self.catalog, self.id, &open.row);
        retry_transient("indexing a segment", || catalog.add_segment(id, row, counts_duration)).await?;
        if kind == TrackKind::Video {
            if let Some(thumbnailer) = self.thumbnailer.take() {
                let init = init_key(self.id, kind, open.row.init_version);
                let segment = segment_key(self.id, kind, open.row.sequence as u64);
                tokio::spawn(make_thumbnail(
                    self.catalog.clone(),
                    self.storage.clone(),
                    self.id,
                    init,
                    segment,
                    thumbnailer,
                ));
            }
        }
        self.segments += 1;
        stats.segments_written.fetch_add(1, Ordering::Relaxed);
        self.recording.segments.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Storage key of a video's thumbnail.
pub fn thumbnail_key(id: VideoId) -> String {
    format!("{id}/thumbnail.jpg")
}

/// Makes and stores the thumbnail of video `id` from one of its segments. Best effort: a video
/// without a thumbnail plays all the same, so failures are logged, not fatal.
async fn make_thumbnail(
    catalog: Arc<Catalog>,
    storage: Arc<dyn Storage>,
    id: VideoId,
    init: String,
    segment: String,
    thumbnailer: Thumbnailer,
) {
    let key = thumbnail_key(id);
    let stored_key = key.clone();
    let made = storage::run(&storage, move |s| {
        let mut media = s.read(&init, 0..s.size(&init)?)?.to_vec();
        media.extend_from_slice(&s.read(&segment, 0..s.size(&segment)?)?);
        let jpeg = thumbnailer(Bytes::from(media)).map_err(std::io::Error::other)?;
        s.put(&stored_key, &jpeg)
    })
    .await;
    let result = match made {
        Ok(()) => catalog.set_thumbnail(id, &key).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => tracing::debug!(video = %id, "thumbnail made"),
        Err(e) => tracing::warn!(video = %id, error = %e, "no thumbnail for this video"),
    }
}

/// Storage key of a track's init segment.
pub fn init_key(id: VideoId, kind: TrackKind, version: i64) -> String {
    crate::upload::package::track_init_key(id, kind.as_str(), version)
}

/// Storage key of a track's segment.
pub fn segment_key(id: VideoId, kind: TrackKind, sequence: u64) -> String {
    crate::upload::package::track_segment_key(id, kind.as_str(), sequence)
}

/// What [`recover`] did to one recording.
#[derive(Debug)]
pub struct Recovered {
    pub id: VideoId,
    /// Segments indexed from disk (the ones not indexed before the crash).
    pub segments_indexed: usize,
    /// Bytes of torn fragments cut off.
    pub bytes_dropped: u64,
    pub status: VideoStatus,
}

/// Indexes the recordings a crash left `recording` (called at start, before any recorder runs):
/// every segment file not in the catalog is scanned, cut after its last complete fragment and
/// indexed; the video is then marked ended (`ready` if anything plays).
pub async fn recover(catalog: &Catalog, storage: &Arc<dyn Storage>) -> Result<Vec<Recovered>, RecordError> {
    let mut recovered = Vec::new();
    for video in catalog.videos_with_status(VideoStatus::Recording).await? {
        let Some(id) = VideoId::parse(&video.id) else { continue };
        let (indexed, dropped, last_ms) = recover_video(catalog, storage, id).await?;
        let has_media = catalog.video(id).await?.is_some_and(|v| v.size_bytes > 0);
        let (status, error) = if has_media {
            (VideoStatus::Ready, None)
        } else {
            (VideoStatus::Failed, Some("the server stopped before a fragment was recorded".to_string()))
        };
        let ended_at_ms = last_ms.unwrap_or(video.created_at_ms);
        catalog.finish_video(id, &VideoEnd { status, error, ended_at_ms }).await?;
        tracing::warn!(video = %id, segments_indexed = indexed, bytes_dropped = dropped, status = status.as_str(), "recovered a recording interrupted by a crash");
        recovered.push(Recovered { id, segments_indexed: indexed, bytes_dropped: dropped, status });
    }
    Ok(recovered)
}

/// Indexes one video's unindexed segments: (segments indexed, bytes dropped, end wall clock).
async fn recover_video(
    catalog: &Catalog,
    storage: &Arc<dyn Storage>,
    id: VideoId,
) -> Result<(usize, u64, Option<i64>), RecordError> {
    let inits = catalog.inits(id).await?;
    let mut indexed = 0;
    let mut dropped = 0;
    let mut last_ms = None;
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let Some(init) = inits.iter().filter(|i| i.track == kind.as_str()).max_by_key(|i| i.version) else { continue };
        let Ok(description) = serde_json::from_str::<TrackDescription>(&init.info) else { continue };
        let known = catalog.segments(id, kind.as_str()).await?;
        let mut previous_version = known.last().map(|s| s.init_version);
        let after = known.last().map_or(-1, |s| s.sequence);
        let prefix = format!("{id}/{}", kind.as_str());
        let names = storage::run(storage, move |s| s.list(&prefix)).await?;
        let mut sequences: Vec<u64> = names.iter().filter_map(|n| n.strip_suffix(".m4s")?.parse().ok()).collect();
        sequences.sort_unstable();
        for sequence in sequences.into_iter().filter(|&s| s as i64 > after) {
            let key = segment_key(id, kind, sequence);
            let read_key = key.clone();
            let bytes = storage::run(storage, move |s| {
                let size = s.size(&read_key)?;
                s.read(&read_key, 0..size)
            })
            .await?;
            let fragments = scan_fragments(&bytes);
            let Some(last) = fragments.last() else {
                dropped += bytes.len() as u64;
                storage::run(storage, move |s| s.remove_all(&key)).await?;
                continue;
            };
            if last.end < bytes.len() {
                dropped += (bytes.len() - last.end) as u64;
                let len = last.end as u64;
                let cut_key = key.clone();
                storage::run(storage, move |s| s.truncate(&cut_key, len)).await?;
            }
            let first = &fragments[0];
            let duration: u64 = fragments.iter().map(|f| f.duration).sum();
            let wall_clock_ms = first.wall_clock.map_or(0, unix_ms);
            let row = SegmentRow {
                track: kind.as_str().into(),
                sequence: sequence as i64,
                init_version: init.version,
                discontinuity: previous_version.is_some_and(|v| v != init.version),
                start_ticks: first.decode_time as i64,
                duration_ticks: duration as i64,
                timescale: description.timescale as i64,
                size_bytes: last.end as i64,
                wall_clock_ms,
            };
            previous_version = Some(init.version);
            catalog
                .add_segment(id, &row, kind == TrackKind::Video || !inits.iter().any(|i| i.track == "video"))
                .await?;
            let end_ms = wall_clock_ms + (duration * 1000 / description.timescale.max(1) as u64) as i64;
            last_ms = last_ms.max(Some(end_ms));
            indexed += 1;
        }
    }
    Ok((indexed, dropped, last_ms))
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `2026-11-21 13:05 UTC`, for default titles.
fn human_time(at: SystemTime) -> String {
    let iso = iso8601(at);
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}
