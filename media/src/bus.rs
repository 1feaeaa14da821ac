//! The Bus: an in-memory fan-out of live streams, keyed by [`StreamPath`] (`live/<name>`,
//! `live/<name>/<rendition>`, `live/<name>/opus`).
//!
//! Each stream keeps its track configuration and a bounded ring of recent frames (the GOP
//! cache) that always reaches back to the latest keyframe, so a new subscriber starts on a
//! keyframe at once. Publishers push synchronously and never wait for subscribers: there is
//! no per-subscriber queue, only a cursor into the shared ring. A subscriber whose cursor falls
//! out of the ring skips to the newest keyframe (counted); one that keeps skipping (each skip
//! within [`BusConfig::slow_subscriber_timeout`] of the last) for longer than that timeout is
//! disconnected (counted). Frames are cloned as
//! `Bytes` handles, never as payload. A publisher that drops and comes back within
//! [`BusConfig::reconnect_grace`] keeps the stream's subscribers; its timestamps are rebased to
//! continue the previous session's timeline.
//!
//! Time is read only through tokio's clock ([`tokio::time::Instant`]), so a paused test clock
//! drives it. Grace periods are deadlines that one Bus-owned task (started with the first
//! grace period inside a runtime) ends when they pass. Waiting for a Bus condition (a publisher,
//! a stream's end) is a notification ([`Bus::published`], [`Bus::live`], [`Bus::ended`]),
//! never a poll.

use crate::frame::Frame;
use crate::path::StreamPath;
use crate::time::MediaTime;
use crate::track::Tracks;
use dashmap::DashMap;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{broadcast, watch, Notify};
use tokio::time::Instant;

/// Bounds and timings of the Bus.
#[derive(Clone, Debug)]
pub struct BusConfig {
    /// How long a stream outlives its publisher, waiting for it to reconnect.
    pub reconnect_grace: Duration,
    /// Hard bound on frames held per stream (the GOP cache may be cut short beyond it).
    pub max_cache_frames: usize,
    /// Hard bound on payload bytes held per stream.
    pub max_cache_bytes: usize,
    /// A subscriber that keeps skipping (skips less than this apart) for longer than this is disconnected.
    pub slow_subscriber_timeout: Duration,
    /// Most frames handed to a subscriber per delivery.
    pub max_batch: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            reconnect_grace: Duration::from_secs(10),
            max_cache_frames: 4096,
            max_cache_bytes: 64 << 20,
            slow_subscriber_timeout: Duration::from_secs(10),
            max_batch: 64,
        }
    }
}

/// Counters over all streams, for metrics.
#[derive(Debug, Default)]
pub struct BusStats {
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    /// Frames a slow subscriber never received because it skipped ahead.
    pub frames_skipped: AtomicU64,
    /// Times a subscriber skipped to a keyframe.
    pub subscriber_skips: AtomicU64,
    /// Subscribers disconnected for staying behind.
    pub slow_disconnects: AtomicU64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BusError {
    #[error("stream {0} already has a publisher")]
    AlreadyPublishing(StreamPath),
    #[error("stream {0} is not live")]
    NotLive(StreamPath),
    #[error("subscriber stayed behind the live edge for over {0:?} and was disconnected")]
    TooSlow(Duration),
}

/// Who publishes a stream.
#[derive(Clone, Debug)]
pub struct PublisherInfo {
    /// Ingest protocol, e.g. "rtmp".
    pub protocol: &'static str,
    /// The publisher's address, for operators.
    pub peer: String,
}

/// What a subscriber receives next.
#[derive(Debug)]
pub enum Delivery {
    /// The stream's tracks: first, and again whenever they change (e.g. a publisher reconnects).
    Tracks(Arc<Tracks>),
    /// Frames in decode order; the first after `Tracks` is a keyframe.
    Frames(Vec<Frame>),
    /// The stream ended (its publisher left and the grace period passed).
    Ended,
}

/// A point-in-time view of a stream, for the API and metrics.
#[derive(Clone, Debug)]
pub struct StreamSnapshot {
    pub path: StreamPath,
    /// `None` while waiting for the publisher to reconnect.
    pub publisher: Option<PublisherInfo>,
    pub publishing_for: Option<Duration>,
    pub tracks: Arc<Tracks>,
    pub ingest_kbps: f64,
    pub video_fps: f64,
    pub bytes_in: u64,
    pub viewers: BTreeMap<&'static str, usize>,
    pub cached_frames: usize,
}

/// The registry of live streams. Cheap to clone.
#[derive(Clone, Default)]
pub struct Bus {
    inner: Arc<BusInner>,
}

struct BusInner {
    streams: DashMap<StreamPath, Arc<Stream>>,
    config: BusConfig,
    stats: BusStats,
    /// Paths of streams as they start (not when a publisher reconnects within the grace period).
    started: broadcast::Sender<StreamPath>,
    /// Paths a service can start when asked (on-demand camera pulls), and where requests go.
    on_demand: DashMap<StreamPath, ()>,
    demand: broadcast::Sender<StreamPath>,
    /// Sent whenever a publisher attaches or leaves and whenever a stream starts or ends: what
    /// [`Bus::published`], [`Bus::live`] and [`Bus::ended`] wait on.
    changes: watch::Sender<()>,
    graces: Arc<Graces>,
}

/// The reconnect grace periods in flight, and the one task that ends them.
#[derive(Default)]
struct Graces {
    pending: Mutex<Vec<Grace>>,
    /// Wakes the driver: a grace period started, or the Bus is gone.
    changed: Notify,
    driver_running: AtomicBool,
}

/// A stream whose publisher (of session `generation`) left: it ends at `deadline` unless a
/// publisher came back.
struct Grace {
    deadline: Instant,
    stream: Arc<Stream>,
    generation: u64,
}

impl Default for BusInner {
    fn default() -> Self {
        BusInner::new(BusConfig::default())
    }
}

impl BusInner {
    fn new(config: BusConfig) -> BusInner {
        BusInner {
            streams: DashMap::new(),
            config,
            stats: BusStats::default(),
            started: broadcast::channel(256).0,
            on_demand: DashMap::new(),
            demand: broadcast::channel(256).0,
            changes: watch::Sender::new(()),
            graces: Arc::default(),
        }
    }

    fn changed(&self) {
        self.changes.send_modify(|_| {});
    }

    /// Ends `stream` if its publisher of session `generation` has not come back.
    fn end_if_abandoned(&self, stream: &Arc<Stream>, generation: u64) {
        let mut st = stream.lock();
        if st.generation != generation || st.publisher.is_some() || st.ended {
            return;
        }
        st.ended = true;
        drop(st);
        self.streams.remove_if(&stream.path, |_, s| Arc::ptr_eq(s, stream));
        stream.wake.send_modify(|_| {});
        self.changed();
    }

    /// Ends the streams whose grace period is over; the earliest deadline still pending.
    fn expire_graces(&self, now: Instant) -> Option<Instant> {
        let expired: Vec<Grace> = {
            let mut pending = lock(&self.graces.pending);
            let (expired, rest) = std::mem::take(&mut *pending).into_iter().partition(|g| g.deadline <= now);
            *pending = rest;
            expired
        };
        for grace in expired {
            self.end_if_abandoned(&grace.stream, grace.generation);
        }
        lock(&self.graces.pending).iter().map(|g| g.deadline).min()
    }

    /// Makes sure the grace driver runs; false when it cannot (no runtime here, none yet).
    fn ensure_grace_driver(self: &Arc<Self>) -> bool {
        if self.graces.driver_running.load(Ordering::Acquire) {
            return true;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return false };
        if self.graces.driver_running.swap(true, Ordering::AcqRel) {
            return true;
        }
        runtime.spawn(drive_graces(self.graces.clone(), Arc::downgrade(self)));
        true
    }
}

impl Drop for BusInner {
    fn drop(&mut self) {
        self.graces.changed.notify_one(); // the driver sees the Bus gone and stops
    }
}

/// The grace driver: sleeps until the earliest deadline (or a new grace period), ends what is
/// due, until the Bus is dropped. Holds the Bus only while ending streams.
async fn drive_graces(graces: Arc<Graces>, bus: Weak<BusInner>) {
    /// Lets a later grace period start a new driver should this one stop (Bus dropped, or its
    /// runtime shut down).
    struct Running(Arc<Graces>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.driver_running.store(false, Ordering::Release);
        }
    }
    let running = Running(graces);
    let graces = &running.0;
    loop {
        let changed = graces.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let Some(next) = bus.upgrade().map(|bus| bus.expire_graces(Instant::now())) else { return };
        match next {
            Some(deadline) => tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = changed => {}
            },
            None => changed.await,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Stream {
    path: StreamPath,
    state: Mutex<State>,
    wake: watch::Sender<()>,
    viewers: Mutex<BTreeMap<&'static str, usize>>,
}

struct Slot {
    frame: Frame,
    sync: bool,
}

struct ActivePublisher {
    info: PublisherInfo,
    since: Instant,
    kick: Arc<Notify>,
}

#[derive(Default)]
struct State {
    generation: u64,
    publisher: Option<ActivePublisher>,
    tracks: Arc<Tracks>,
    tracks_version: u64,
    ring: VecDeque<Slot>,
    ring_bytes: usize,
    first_seq: u64,
    next_seq: u64,
    /// Latest and previous sync points: video keyframes, or in audio-only streams an audio
    /// frame every [`AUDIO_ONLY_SYNC_INTERVAL`] (every AAC frame is decodable, but a sync point per
    /// frame would shrink the GOP cache to two frames).
    sync_seq: Option<u64>,
    prev_sync_seq: Option<u64>,
    /// The first sync point of the publisher's session: what comes before it is never delivered.
    session_sync_seq: Option<u64>,
    sync_dts: Option<MediaTime>,
    rebase_pending: bool,
    offset: Option<MediaTime>,
    last_dts: Option<MediaTime>,
    ended: bool,
    bytes_in: u64,
    rate: RateMeter,
    /// Frames pushed since subscribers were last woken (see [`MAX_UNANNOUNCED_AUDIO`]).
    unannounced: u32,
}

/// Spacing of sync points in audio-only streams.
const AUDIO_ONLY_SYNC_INTERVAL: MediaTime = MediaTime::from_millis(1000);

/// Audio frames that may wait for the next video frame before subscribers are woken. Waking
/// on video frames only (≈30/s instead of ≈73/s with AAC) lets each viewer send audio and video
/// in one vectored write; the bound keeps audio flowing when video pauses.
const MAX_UNANNOUNCED_AUDIO: u32 = 3;

#[derive(Default)]
struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    video_frames: u64,
    kbps: f64,
    fps: f64,
}

impl RateMeter {
    fn add(&mut self, now: Instant, bytes: usize, video: bool) {
        let start = *self.window_start.get_or_insert(now);
        self.bytes += bytes as u64;
        self.video_frames += video as u64;
        let elapsed = now.duration_since(start).as_secs_f64();
        if elapsed >= 1.0 {
            self.kbps = self.bytes as f64 * 8.0 / 1000.0 / elapsed;
            self.fps = self.video_frames as f64 / elapsed;
            *self = RateMeter { window_start: Some(now), kbps: self.kbps, fps: self.fps, ..Default::default() };
        }
    }
}

impl Bus {
    pub fn new(config: BusConfig) -> Bus {
        Bus { inner: Arc::new(BusInner::new(config)) }
    }

    pub fn config(&self) -> &BusConfig {
        &self.inner.config
    }

    pub fn stats(&self) -> &BusStats {
        &self.inner.stats
    }

    /// Claims `path` for a publisher. A stream waiting for its publisher to reconnect is taken
    /// over with its subscribers; a stream with an active publisher is refused.
    pub fn publish(&self, path: &StreamPath, info: PublisherInfo) -> Result<Publisher, BusError> {
        let kick = Arc::new(Notify::new());
        loop {
            let mut created = false;
            let stream = self
                .inner
                .streams
                .entry(path.clone())
                .or_insert_with(|| {
                    created = true;
                    Arc::new(Stream {
                        path: path.clone(),
                        state: Mutex::new(State::default()),
                        wake: watch::Sender::new(()),
                        viewers: Mutex::default(),
                    })
                })
                .clone();
            let generation = {
                let mut st = stream.lock();
                if st.ended {
                    // Being ended (grace over, or closed): never attach to it; start afresh.
                    drop(st);
                    self.inner.streams.remove_if(path, |_, s| Arc::ptr_eq(s, &stream));
                    continue;
                }
                if st.publisher.is_some() {
                    return Err(BusError::AlreadyPublishing(path.clone()));
                }
                st.generation += 1;
                st.publisher = Some(ActivePublisher { info, since: Instant::now(), kick: kick.clone() });
                // Subscribers resume at the new session's first keyframe; the old GOP is stale.
                st.first_seq = st.next_seq;
                st.ring.clear();
                st.ring_bytes = 0;
                st.sync_seq = None;
                st.prev_sync_seq = None;
                st.session_sync_seq = None;
                st.rebase_pending = st.last_dts.is_some();
                st.offset = None;
                st.generation
            };
            stream.wake.send_modify(|_| {});
            if created {
                let _ = self.inner.started.send(path.clone());
            }
            self.inner.changed();
            return Ok(Publisher { bus: self.inner.clone(), stream, generation, kick });
        }
    }

    /// Paths of streams as they start, for services that follow every stream (packagers,
    /// recorders). A receiver that lags should reconcile with [`Bus::snapshot`].
    pub fn started_streams(&self) -> broadcast::Receiver<StreamPath> {
        self.inner.started.subscribe()
    }

    /// Calls `on_start` with the path of every stream live now and of every stream that starts
    /// later, until the Bus is dropped: how a service (packager, recorder) follows all streams.
    /// A path may be reported again after a lagging announcement; `on_start` must be idempotent.
    pub async fn for_each_started_stream(&self, mut on_start: impl FnMut(&StreamPath)) {
        let mut started = self.started_streams();
        for snapshot in self.snapshot() {
            on_start(&snapshot.path);
        }
        loop {
            match started.recv().await {
                Ok(path) => on_start(&path),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    for snapshot in self.snapshot() {
                        on_start(&snapshot.path);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    }

    /// Declares that `path` can be started on request ([`Bus::request`]), or no longer (`false`).
    pub fn set_on_demand(&self, path: &StreamPath, on_demand: bool) {
        if on_demand {
            self.inner.on_demand.insert(path.clone(), ());
        } else {
            self.inner.on_demand.remove(path);
        }
    }

    /// Requests for on-demand paths, for the service that starts them.
    pub fn demanded_streams(&self) -> broadcast::Receiver<StreamPath> {
        self.inner.demand.subscribe()
    }

    /// Makes sure `path` has a publisher if it can: when it has none but is on demand, asks for
    /// it and waits up to `timeout` for its publisher. True when the stream is published.
    pub async fn request(&self, path: &StreamPath, timeout: Duration) -> bool {
        if self.is_published(path) {
            return true;
        }
        if !self.inner.on_demand.contains_key(path) || self.inner.demand.send(path.clone()).is_err() {
            return false;
        }
        tokio::time::timeout(timeout, self.published(path)).await.is_ok()
    }

    /// Whether `path` has a publisher now (not waiting for one to reconnect).
    pub fn is_published(&self, path: &StreamPath) -> bool {
        self.stream(path).is_some_and(|s| s.lock().publisher.is_some())
    }

    /// Resolves once `path` has a publisher (at once if it has one).
    pub async fn published(&self, path: &StreamPath) {
        self.wait_until(|bus| bus.is_published(path)).await
    }

    /// Resolves once `path` is on the Bus (at once if it is).
    pub async fn live(&self, path: &StreamPath) {
        self.wait_until(|bus| bus.contains(path)).await
    }

    /// Resolves once `path` is no longer on the Bus: closed, or its grace period over (at once
    /// if it is not there).
    pub async fn ended(&self, path: &StreamPath) {
        self.wait_until(|bus| !bus.contains(path)).await
    }

    /// Resolves once `done` holds; checked now and after every change of publishers or streams.
    async fn wait_until(&self, mut done: impl FnMut(&Bus) -> bool) {
        let mut changes = self.inner.changes.subscribe();
        loop {
            changes.borrow_and_update();
            if done(self) {
                return;
            }
            // Cannot fail: the sender lives as long as `self`.
            let _ = changes.changed().await;
        }
    }

    /// Subscribes to `path`, starting at the latest keyframe. `protocol` labels the viewer count.
    pub fn subscribe(&self, path: &StreamPath, protocol: &'static str) -> Result<Subscriber, BusError> {
        self.attach(path, Some(protocol))
    }

    /// Subscribes a service of the server itself (a packager, a recorder): it is not a viewer.
    pub fn subscribe_service(&self, path: &StreamPath) -> Result<Subscriber, BusError> {
        self.attach(path, None)
    }

    fn stream(&self, path: &StreamPath) -> Option<Arc<Stream>> {
        self.inner.streams.get(path).map(|s| s.clone())
    }

    fn attach(&self, path: &StreamPath, protocol: Option<&'static str>) -> Result<Subscriber, BusError> {
        let stream = self.stream(path).ok_or_else(|| BusError::NotLive(path.clone()))?;
        if let Some(protocol) = protocol {
            *lock(&stream.viewers).entry(protocol).or_default() += 1;
        }
        let wake = stream.wake.subscribe();
        Ok(Subscriber {
            bus: self.inner.clone(),
            stream,
            protocol,
            wake,
            generation: 0,
            tracks_version: 0,
            cursor: 0,
            awaiting_sync: true,
            skip_streak: None,
            skipped: 0,
        })
    }

    /// Asks the publisher of `path` to disconnect. Returns false when nobody publishes it.
    pub fn kick(&self, path: &StreamPath) -> bool {
        let Some(stream) = self.stream(path) else { return false };
        let st = stream.lock();
        match &st.publisher {
            Some(p) => {
                p.kick.notify_one();
                true
            }
            None => false,
        }
    }

    /// Ends `path` now: its publisher is asked to leave, its subscribers receive
    /// [`Delivery::Ended`], and no grace period applies. Returns false when it did not exist.
    pub fn close(&self, path: &StreamPath) -> bool {
        let Some((_, stream)) = self.inner.streams.remove(path) else { return false };
        {
            let mut st = stream.lock();
            st.ended = true;
            if let Some(p) = &st.publisher {
                p.kick.notify_one();
            }
        }
        stream.wake.send_modify(|_| {});
        self.inner.changed();
        true
    }

    /// Whether `path` exists (live, or waiting for its publisher to reconnect).
    pub fn contains(&self, path: &StreamPath) -> bool {
        self.inner.streams.contains_key(path)
    }

    /// A snapshot of every stream, sorted by path (as text).
    pub fn snapshot(&self) -> Vec<StreamSnapshot> {
        let streams: Vec<Arc<Stream>> = self.inner.streams.iter().map(|e| e.value().clone()).collect();
        let mut out: Vec<StreamSnapshot> = streams.iter().map(|s| s.snapshot()).collect();
        out.sort_by_cached_key(|s| s.path.to_string());
        out
    }

    pub fn stream_snapshot(&self, path: &StreamPath) -> Option<StreamSnapshot> {
        self.stream(path).map(|s| s.snapshot())
    }
}

impl Stream {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the ring inconsistent in a way that
        // matters more than losing the stream, so recover rather than poison every viewer.
        lock(&self.state)
    }

    fn snapshot(&self) -> StreamSnapshot {
        let viewers = lock(&self.viewers).clone();
        let st = self.lock();
        StreamSnapshot {
            path: self.path.clone(),
            publisher: st.publisher.as_ref().map(|p| p.info.clone()),
            publishing_for: st.publisher.as_ref().map(|p| p.since.elapsed()),
            tracks: st.tracks.clone(),
            ingest_kbps: st.rate.kbps,
            video_fps: st.rate.fps,
            bytes_in: st.bytes_in,
            viewers,
            cached_frames: st.ring.len(),
        }
    }
}

/// The write side of a stream. Dropping it starts the reconnect grace period.
pub struct Publisher {
    bus: Arc<BusInner>,
    stream: Arc<Stream>,
    generation: u64,
    kick: Arc<Notify>,
}

impl Publisher {
    pub fn path(&self) -> &StreamPath {
        &self.stream.path
    }

    /// Sets the stream's tracks; subscribers receive them before further frames.
    pub fn set_tracks(&self, tracks: Tracks) {
        {
            let mut st = self.stream.lock();
            if *st.tracks == tracks && st.tracks_version > 0 {
                return;
            }
            st.tracks = Arc::new(tracks);
            st.tracks_version += 1;
        }
        self.stream.wake.send_modify(|_| {});
    }

    /// Appends a frame to the stream. Never waits for subscribers.
    pub fn push(&self, mut frame: Frame) {
        let len = frame.payload.len();
        let config = &self.bus.config;
        let wake = {
            let mut st = self.stream.lock();
            if st.rebase_pending {
                // Continue the previous session's timeline one frame-ish after its last frame.
                let resume_at = st.last_dts.expect("rebase implies a last dts") + MediaTime::from_millis(20);
                st.offset = Some(resume_at - frame.dts);
                st.rebase_pending = false;
            }
            if let Some(offset) = st.offset {
                frame.pts = frame.pts + offset;
                frame.dts = frame.dts + offset;
            }
            let sync = frame.keyframe
                && if st.tracks.video.is_some() {
                    frame.is_video()
                } else {
                    st.sync_seq.is_none()
                        || st
                            .sync_dts
                            .is_none_or(|last| (frame.dts - last).as_millis() >= AUDIO_ONLY_SYNC_INTERVAL.as_millis())
                };
            let seq = st.next_seq;
            st.next_seq += 1;
            if sync {
                st.prev_sync_seq = st.sync_seq;
                st.sync_seq = Some(seq);
                st.session_sync_seq.get_or_insert(seq);
                st.sync_dts = Some(frame.dts);
            }
            if st.last_dts.is_none_or(|last| frame.dts.as_millis() > last.as_millis()) {
                st.last_dts = Some(frame.dts);
            }
            st.rate.add(Instant::now(), len, frame.is_video());
            st.bytes_in += len as u64;
            st.ring_bytes += len;
            let wake = frame.is_video() || st.tracks.video.is_none() || st.unannounced >= MAX_UNANNOUNCED_AUDIO;
            st.unannounced = if wake { 0 } else { st.unannounced + 1 };
            st.ring.push_back(Slot { frame, sync });
            st.evict(config);
            wake
        };
        self.bus.stats.frames_in.fetch_add(1, Ordering::Relaxed);
        self.bus.stats.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
        if wake {
            self.stream.wake.send_modify(|_| {});
        }
    }

    /// Resolves when an operator asks this publisher to leave (see [`Bus::kick`]).
    pub async fn kicked(&self) {
        self.kick.notified().await
    }
}

impl State {
    /// Drops frames older than the previous GOP, then whatever the hard bounds demand.
    fn evict(&mut self, config: &BusConfig) {
        let keep_from = self.prev_sync_seq.or(self.sync_seq).unwrap_or(self.first_seq);
        while self.ring.len() > 1
            && (self.first_seq < keep_from
                || self.ring.len() > config.max_cache_frames
                || self.ring_bytes > config.max_cache_bytes)
        {
            let slot = self.ring.pop_front().expect("ring has > 1 frame");
            self.ring_bytes -= slot.frame.payload.len();
            if Some(self.first_seq) == self.prev_sync_seq {
                self.prev_sync_seq = None;
            }
            if Some(self.first_seq) == self.sync_seq {
                self.sync_seq = None;
            }
            self.first_seq += 1;
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        {
            let mut st = self.stream.lock();
            if st.generation != self.generation {
                return;
            }
            st.publisher = None;
        }
        self.stream.wake.send_modify(|_| {});
        self.bus.changed();
        if !self.bus.ensure_grace_driver() {
            // No runtime to wait in (and no driver started before): no grace period.
            self.bus.end_if_abandoned(&self.stream, self.generation);
            return;
        }
        let deadline = Instant::now() + self.bus.config.reconnect_grace;
        let grace = Grace { deadline, stream: self.stream.clone(), generation: self.generation };
        lock(&self.bus.graces.pending).push(grace);
        self.bus.graces.changed.notify_one();
    }
}

/// The read side of a stream: a cursor into its ring.
pub struct Subscriber {
    bus: Arc<BusInner>,
    stream: Arc<Stream>,
    /// The viewer label; `None` for the server's own services.
    protocol: Option<&'static str>,
    wake: watch::Receiver<()>,
    generation: u64,
    tracks_version: u64,
    cursor: u64,
    awaiting_sync: bool,
    /// Start of the current run of skips, and the latest skip.
    skip_streak: Option<(Instant, Instant)>,
    /// Frames this subscriber lost to skips (from the session's first sync point on) since
    /// [`Subscriber::take_skipped`] last asked.
    skipped: u64,
}

impl Subscriber {
    pub fn path(&self) -> &StreamPath {
        &self.stream.path
    }

    /// Waits until the stream's tracks are known (its publisher announced them) and returns
    /// them; `None` if the stream ends first. Consumes nothing: [`Subscriber::recv`] still
    /// delivers them first.
    pub async fn announced_tracks(&mut self) -> Option<Arc<Tracks>> {
        loop {
            self.wake.borrow_and_update();
            {
                let st = self.stream.lock();
                if st.tracks.video.is_some() || st.tracks.audio.is_some() {
                    return Some(st.tracks.clone());
                }
                if st.ended {
                    return None;
                }
            }
            if self.wake.changed().await.is_err() {
                return None;
            }
        }
    }

    /// Frames lost to skips (the cursor fell out of the ring and jumped to the newest
    /// keyframe) since the last call: a viewer just goes on, a recorder must say it lost them.
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// The next delivery. Cancel-safe: dropping the future loses nothing.
    pub async fn recv(&mut self) -> Result<Delivery, BusError> {
        loop {
            self.wake.borrow_and_update();
            if let Some(delivery) = self.poll_state()? {
                return Ok(delivery);
            }
            if self.wake.changed().await.is_err() {
                return Ok(Delivery::Ended);
            }
        }
    }

    fn poll_state(&mut self) -> Result<Option<Delivery>, BusError> {
        let config = &self.bus.config;
        let stats = &self.bus.stats;
        let st = self.stream.lock();
        if st.generation != self.generation {
            self.generation = st.generation;
            self.cursor = st.sync_seq.unwrap_or(st.next_seq);
            self.awaiting_sync = st.sync_seq.is_none();
            self.tracks_version = 0; // a new session: send the tracks again before its frames
        }
        if st.tracks_version != self.tracks_version && st.tracks_version > 0 {
            self.tracks_version = st.tracks_version;
            return Ok(Some(Delivery::Tracks(st.tracks.clone())));
        }
        if self.tracks_version > 0 {
            if self.cursor < st.first_seq {
                let target = st.sync_seq.unwrap_or(st.next_seq);
                let now = Instant::now();
                let streak_start = match self.skip_streak {
                    Some((start, last)) if now.duration_since(last) <= config.slow_subscriber_timeout => start,
                    _ => now,
                };
                self.skip_streak = Some((streak_start, now));
                if now.duration_since(streak_start) > config.slow_subscriber_timeout {
                    stats.slow_disconnects.fetch_add(1, Ordering::Relaxed);
                    return Err(BusError::TooSlow(config.slow_subscriber_timeout));
                }
                stats.subscriber_skips.fetch_add(1, Ordering::Relaxed);
                stats.frames_skipped.fetch_add(target - self.cursor, Ordering::Relaxed);
                // Frames before the session's first sync point were never going to be delivered
                // (e.g. audio evicted when the stream's first keyframe arrives): no loss.
                let from = st.session_sync_seq.map_or(target, |first| first.max(self.cursor));
                self.skipped += target.saturating_sub(from);
                tracing::debug!(stream = %self.stream.path, protocol = self.protocol.unwrap_or("service"), skipped = target - self.cursor, "slow subscriber skipped to keyframe");
                self.cursor = target;
                self.awaiting_sync = st.sync_seq.is_none();
            }
            let mut frames = Vec::with_capacity(((st.next_seq - self.cursor) as usize).min(config.max_batch));
            while self.cursor < st.next_seq && frames.len() < config.max_batch {
                let slot = &st.ring[(self.cursor - st.first_seq) as usize];
                self.cursor += 1;
                if self.awaiting_sync && !slot.sync {
                    stats.frames_skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                self.awaiting_sync = false;
                frames.push(slot.frame.clone());
            }
            if !frames.is_empty() {
                return Ok(Some(Delivery::Frames(frames)));
            }
        }
        if st.ended {
            return Ok(Some(Delivery::Ended));
        }
        Ok(None)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let Some(protocol) = self.protocol else { return };
        let mut viewers = lock(&self.stream.viewers);
        if let Some(n) = viewers.get_mut(protocol) {
            *n -= 1;
            if *n == 0 {
                viewers.remove(protocol);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::TrackId;
    use crate::track::CodecConfig;
    use bytes::Bytes;

    fn tracks() -> Tracks {
        Tracks { video: Some(CodecConfig::Av1 { record: Bytes::new() }), audio: None, encoder: None }
    }

    fn video(ms: i64, keyframe: bool) -> Frame {
        Frame {
            track: TrackId::VIDEO,
            pts: MediaTime::from_millis(ms),
            dts: MediaTime::from_millis(ms),
            keyframe,
            payload: Bytes::from(vec![ms as u8; 100]),
        }
    }

    fn info() -> PublisherInfo {
        PublisherInfo { protocol: "test", peer: "127.0.0.1:1".into() }
    }

    fn live(name: &str) -> StreamPath {
        StreamPath::live(name).unwrap()
    }

    async fn frames(sub: &mut Subscriber) -> Vec<Frame> {
        match tokio::time::timeout(Duration::from_secs(1), sub.recv()).await.expect("delivery in time").unwrap() {
            Delivery::Frames(f) => f,
            other => panic!("expected frames, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_start_only_on_demand_streams() {
        let bus = Bus::default();
        let (cam, nobody) = (live("cam"), live("nobody"));
        assert!(!bus.request(&nobody, Duration::from_millis(50)).await, "not on demand: no wait");
        bus.set_on_demand(&cam, true);
        let mut demanded = bus.demanded_streams();
        let starter = bus.clone();
        let service = tokio::spawn(async move {
            let path = demanded.recv().await.unwrap();
            tokio::time::sleep(Duration::from_millis(700)).await; // the camera takes a while
            starter.publish(&path, info()).unwrap()
        });
        let asked = Instant::now();
        assert!(bus.request(&cam, Duration::from_secs(5)).await, "started on request");
        assert_eq!(asked.elapsed(), Duration::from_millis(700), "woken when published, not on a poll tick");
        let publisher = service.await.unwrap();
        assert!(bus.request(&cam, Duration::ZERO).await, "already published: no request");
        drop(publisher);
        bus.set_on_demand(&cam, false);
        assert!(!bus.request(&cam, Duration::from_millis(50)).await, "no longer on demand");
    }

    #[tokio::test(start_paused = true)]
    async fn request_gives_up_after_its_timeout() {
        let bus = Bus::default();
        bus.set_on_demand(&live("cam"), true);
        let _demanded = bus.demanded_streams();
        let asked = Instant::now();
        assert!(!bus.request(&live("cam"), Duration::from_secs(2)).await);
        assert_eq!(asked.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_are_woken_by_bus_changes() {
        let bus = Bus::default();
        let a = live("a");
        let watcher = bus.clone();
        let path = a.clone();
        let waits = tokio::spawn(async move {
            let start = Instant::now();
            watcher.live(&path).await;
            let live_at = start.elapsed();
            watcher.published(&path).await;
            watcher.ended(&path).await;
            (live_at, start.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let publisher = bus.publish(&a, info()).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waits.is_finished(), "still live");
        drop(publisher);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waits.is_finished(), "waiting for its publisher to come back");
        assert!(bus.close(&a));
        let (live_at, ended_at) = waits.await.unwrap();
        assert_eq!(live_at, Duration::from_millis(300));
        assert_eq!(ended_at, Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn subscriber_waits_for_announced_tracks() {
        let bus = Bus::default();
        let publisher = bus.publish(&live("a"), info()).unwrap();
        let mut sub = bus.subscribe(&live("a"), "test").unwrap();
        let announce = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            publisher.set_tracks(tracks());
            publisher
        });
        let start = Instant::now();
        assert_eq!(sub.announced_tracks().await.as_deref(), Some(&tracks()));
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)), "still delivered by recv");
        let publisher = announce.await.unwrap();
        assert!(bus.close(publisher.path()));
        let publisher = bus.publish(&live("b"), info()).unwrap();
        let mut late = bus.subscribe(&live("b"), "test").unwrap();
        drop(publisher);
        assert_eq!(late.announced_tracks().await, None, "ended (grace over) before any tracks");
    }

    #[tokio::test(start_paused = true)]
    async fn subscriber_receives_the_same_payload_memory() {
        let bus = Bus::default();
        let publisher = bus.publish(&live("a"), info()).unwrap();
        publisher.set_tracks(tracks());
        let mut sub = bus.subscribe(&live("a"), "test").unwrap();
        let frame = video(0, true);
        let ptr = frame.payload.as_ptr();
        publisher.push(frame);
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        let got = frames(&mut sub).await;
        assert_eq!(got[0].payload.as_ptr(), ptr, "zero-copy: same memory in and out");
    }

    #[tokio::test(start_paused = true)]
    async fn new_subscriber_starts_at_latest_keyframe() {
        let bus = Bus::default();
        let publisher = bus.publish(&live("a"), info()).unwrap();
        publisher.set_tracks(tracks());
        for (i, key) in [true, false, false, true, false].into_iter().enumerate() {
            publisher.push(video(i as i64 * 40, key));
        }
        let mut sub = bus.subscribe(&live("a"), "test").unwrap();
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        let got = frames(&mut sub).await;
        assert_eq!(got.iter().map(|f| f.dts.as_millis()).collect::<Vec<_>>(), vec![120, 160]);
        assert!(got[0].keyframe);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_subscriber_skips_to_keyframe_then_is_disconnected() {
        let config = BusConfig { slow_subscriber_timeout: Duration::from_millis(50), ..Default::default() };
        let bus = Bus::new(config);
        let publisher = bus.publish(&live("a"), info()).unwrap();
        publisher.set_tracks(tracks());
        let mut sub = bus.subscribe(&live("a"), "test").unwrap();
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        // Three GOPs go by while the subscriber does not read.
        for i in 0..12 {
            publisher.push(video(i * 40, i % 4 == 0));
        }
        let got = frames(&mut sub).await;
        assert_eq!(got[0].dts.as_millis(), 320, "skipped to the newest keyframe");
        assert_eq!(bus.stats().subscriber_skips.load(Ordering::Relaxed), 1);
        assert_eq!(bus.stats().frames_skipped.load(Ordering::Relaxed), 8);
        assert_eq!(sub.take_skipped(), 8, "the subscriber knows what it lost");
        assert_eq!(sub.take_skipped(), 0);
        // It keeps falling behind, skipping every 30 ms, for longer than the 50 ms bound.
        for round in 1..3 {
            tokio::time::advance(Duration::from_millis(30)).await;
            for i in 12 * round..12 * (round + 1) {
                publisher.push(video(i * 40, i % 4 == 0));
            }
            if round < 2 {
                let _ = frames(&mut sub).await;
            }
        }
        assert_eq!(sub.recv().await.unwrap_err(), BusError::TooSlow(Duration::from_millis(50)));
        assert_eq!(bus.stats().slow_disconnects.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn frames_before_the_first_keyframe_are_no_loss_but_a_skipped_gop_is() {
        let bus = Bus::new(BusConfig::default());
        let publisher = bus.publish(&live("a"), info()).unwrap();
        publisher.set_tracks(tracks());
        let mut sub = bus.subscribe_service(&live("a")).unwrap();
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        // A frame before the first keyframe is evicted when the keyframe arrives.
        publisher.push(video(0, false));
        publisher.push(video(40, true));
        assert_eq!(frames(&mut sub).await[0].dts.as_millis(), 40);
        assert_eq!(sub.take_skipped(), 0, "nothing before the first keyframe was ever deliverable");
        // Three GOPs go by unread: the skip to the newest keyframe is a loss.
        for i in 2..14 {
            publisher.push(video(i * 40, i % 4 == 1));
        }
        assert_eq!(frames(&mut sub).await[0].dts.as_millis(), 520);
        assert_eq!(sub.take_skipped(), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn skips_far_apart_are_not_a_streak() {
        let config = BusConfig { slow_subscriber_timeout: Duration::from_millis(50), ..Default::default() };
        let bus = Bus::new(config);
        let publisher = bus.publish(&live("a"), info()).unwrap();
        publisher.set_tracks(tracks());
        let mut sub = bus.subscribe(&live("a"), "test").unwrap();
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        for round in 0..4 {
            for i in 12 * round..12 * (round + 1) {
                publisher.push(video(i * 40, i % 4 == 0));
            }
            assert!(frames(&mut sub).await[0].keyframe, "skipped, not disconnected");
            tokio::time::advance(Duration::from_millis(60)).await;
        }
        assert_eq!(bus.stats().subscriber_skips.load(Ordering::Relaxed), 4);
        assert_eq!(bus.stats().slow_disconnects.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn audio_waits_for_video_but_not_for_long() {
        let bus = Bus::default();
        let publisher = bus.publish(&live("a"), info()).unwrap();
        publisher.set_tracks(tracks());
        let mut sub = bus.subscribe(&live("a"), "test").unwrap();
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        // A viewer task waiting for frames, reporting each delivery's size.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Delivery::Frames(f)) = sub.recv().await {
                let _ = tx.send(f.len());
            }
        });
        // With the clock paused, a sleep returns once every other task is idle.
        let settle = || tokio::time::sleep(Duration::from_millis(30));
        publisher.push(video(0, true));
        settle().await;
        assert_eq!(rx.try_recv(), Ok(1));
        let audio = |ms| Frame { track: TrackId::AUDIO, keyframe: true, ..video(ms, false) };
        publisher.push(audio(10));
        publisher.push(audio(20));
        settle().await;
        assert!(rx.try_recv().is_err(), "audio alone does not wake a waiting viewer");
        publisher.push(video(33, false));
        settle().await;
        assert_eq!(rx.try_recv(), Ok(3), "audio and video arrive in one delivery");
        for ms in [40, 50, 60, 70] {
            publisher.push(audio(ms));
        }
        settle().await;
        assert_eq!(rx.try_recv(), Ok(4), "a video pause does not hold audio back");
    }

    #[tokio::test(start_paused = true)]
    async fn audio_only_streams_cache_about_a_second() {
        let bus = Bus::default();
        let radio = live("radio");
        let publisher = bus.publish(&radio, info()).unwrap();
        publisher.set_tracks(Tracks {
            video: None,
            audio: Some(CodecConfig::Opus { channels: 2, sample_rate: 48000 }),
            encoder: None,
        });
        for i in 0..200 {
            publisher.push(Frame { track: TrackId::AUDIO, keyframe: true, ..video(i * 20, false) });
        }
        let cached = bus.stream_snapshot(&radio).unwrap().cached_frames;
        assert!((50..=100).contains(&cached), "1–2 s of 20 ms frames cached, got {cached}");
        let mut sub = bus.subscribe(&radio, "test").unwrap();
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        assert!(frames(&mut sub).await.len() >= 40, "a new listener starts up to a second back");
    }

    #[tokio::test(start_paused = true)]
    async fn rates_and_publishing_time_follow_the_clock() {
        let bus = Bus::default();
        let publisher = bus.publish(&live("a"), info()).unwrap();
        publisher.set_tracks(tracks());
        for i in 0..=25 {
            publisher.push(video(i * 40, i % 25 == 0));
            tokio::time::advance(Duration::from_millis(40)).await;
        }
        let snapshot = bus.stream_snapshot(&live("a")).unwrap();
        // 26 frames of 100 bytes within the first second.
        assert_eq!(snapshot.video_fps, 26.0);
        assert_eq!(snapshot.ingest_kbps, 2600.0 * 8.0 / 1000.0);
        assert_eq!(snapshot.publishing_for, Some(Duration::from_millis(26 * 40)));
    }

    #[tokio::test(start_paused = true)]
    async fn publish_never_attaches_to_a_closed_stream() {
        let bus = Bus::default();
        let a = live("a");
        let first = bus.publish(&a, info()).unwrap();
        assert!(bus.close(&a));
        let second = bus.publish(&a, info()).unwrap();
        assert!(bus.contains(&a), "the new publisher's stream is on the map");
        assert!(bus.kick(&a), "and reachable");
        drop(first);
        assert!(bus.stream_snapshot(&a).unwrap().publisher.is_some(), "the old publisher's drop does not touch it");
        drop(second);
    }

    #[tokio::test(start_paused = true)]
    async fn cache_is_bounded() {
        let config = BusConfig { max_cache_frames: 10, ..Default::default() };
        let bus = Bus::new(config);
        let publisher = bus.publish(&live("a"), info()).unwrap();
        publisher.set_tracks(tracks());
        for i in 0..1000 {
            publisher.push(video(i * 40, i % 250 == 0));
        }
        assert_eq!(bus.stream_snapshot(&live("a")).unwrap().cached_frames, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn second_publisher_is_refused() {
        let bus = Bus::default();
        let _p = bus.publish(&live("a"), info()).unwrap();
        assert_eq!(bus.publish(&live("a"), info()).err(), Some(BusError::AlreadyPublishing(live("a"))));
    }

    #[tokio::test(start_paused = true)]
    async fn streams_are_keyed_by_typed_paths() {
        let bus = Bus::default();
        let mut started = bus.started_streams();
        let source = bus.publish(&live("a"), info()).unwrap();
        let opus = bus.publish(&StreamPath::opus(source.path().name.clone()), info()).unwrap();
        assert_eq!(started.recv().await.unwrap(), live("a"));
        assert_eq!(started.recv().await.unwrap().to_string(), "live/a/opus");
        assert_eq!(opus.path().to_source(), *source.path());
        let paths: Vec<String> = bus.snapshot().iter().map(|s| s.path.to_string()).collect();
        assert_eq!(paths, ["live/a", "live/a/opus"]);
        assert_eq!(bus.subscribe(&live("b"), "test").err(), Some(BusError::NotLive(live("b"))));
        assert_eq!(BusError::NotLive(live("b")).to_string(), "stream live/b is not live");
    }

    #[tokio::test(start_paused = true)]
    async fn reconnect_within_grace_keeps_subscribers_and_timeline() {
        let bus = Bus::default();
        let a = live("a");
        let publisher = bus.publish(&a, info()).unwrap();
        publisher.set_tracks(tracks());
        let mut sub = bus.subscribe(&a, "test").unwrap();
        publisher.push(video(5000, true));
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        assert_eq!(frames(&mut sub).await.len(), 1);
        drop(publisher);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(bus.stream_snapshot(&a).unwrap().publisher.is_none());
        let publisher = bus.publish(&a, info()).unwrap();
        publisher.set_tracks(tracks());
        publisher.push(video(0, false)); // the new session starts mid-GOP: not delivered
        publisher.push(video(40, true));
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        let got = frames(&mut sub).await;
        assert_eq!(got.len(), 1);
        assert!(got[0].keyframe);
        assert_eq!(got[0].dts.as_millis(), 5060, "timeline continues after the first session");
        assert_eq!(bus.snapshot()[0].viewers.get("test"), Some(&1));
        // The first session's grace deadline passes: it does not end the new session.
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(bus.stream_snapshot(&a).unwrap().publisher.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn close_ends_subscribers_and_kicks_publisher() {
        let bus = Bus::default();
        let a = live("a");
        let publisher = bus.publish(&a, info()).unwrap();
        publisher.set_tracks(tracks());
        let mut sub = bus.subscribe(&a, "test").unwrap();
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        assert!(bus.close(&a));
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Ended));
        tokio::time::timeout(Duration::from_secs(1), publisher.kicked()).await.expect("publisher kicked");
        assert!(!bus.contains(&a));
        assert!(!bus.close(&a));
    }

    #[tokio::test(start_paused = true)]
    async fn stream_ends_when_its_grace_period_is_over() {
        let grace = Duration::from_secs(10);
        let bus = Bus::new(BusConfig { reconnect_grace: grace, ..Default::default() });
        let (a, b) = (live("a"), live("b"));
        let publisher = bus.publish(&a, info()).unwrap();
        publisher.set_tracks(tracks());
        let mut sub = bus.subscribe(&a, "test").unwrap();
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Tracks(_)));
        let left = Instant::now();
        drop(publisher);
        tokio::time::sleep(Duration::from_secs(4)).await;
        drop(bus.publish(&b, info()).unwrap()); // a later grace period, on the same driver
        tokio::time::sleep(grace - Duration::from_secs(4) - Duration::from_millis(1)).await;
        assert!(bus.contains(&a), "still within its grace period");
        assert!(matches!(sub.recv().await.unwrap(), Delivery::Ended), "woken by the grace driver");
        assert_eq!(left.elapsed(), grace, "exactly at the deadline");
        assert!(!bus.contains(&a));
        assert!(bus.contains(&b));
        bus.ended(&b).await;
        assert_eq!(left.elapsed(), grace + Duration::from_secs(4));
    }

    #[test]
    fn a_publisher_dropped_outside_a_runtime_ends_its_stream_at_once() {
        let bus = Bus::default();
        let publisher = bus.publish(&live("a"), info()).unwrap();
        drop(publisher);
        assert!(!bus.contains(&live("a")), "no runtime to wait in: no grace period");
    }

    #[test]
    fn grace_driver_stops_with_its_runtime_and_starts_again() {
        let bus = Bus::new(BusConfig { reconnect_grace: Duration::from_secs(10), ..Default::default() });
        let runtime =
            || tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        runtime().block_on(async {
            drop(bus.publish(&live("a"), info()).unwrap());
            tokio::task::yield_now().await;
        });
        assert!(bus.contains(&live("a")), "its runtime ended before the grace period did");
        runtime().block_on(async {
            drop(bus.publish(&live("b"), info()).unwrap());
            bus.ended(&live("b")).await;
            assert!(!bus.contains(&live("a")), "the new driver also ends the earlier stream");
        });
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_driver_stops_with_the_bus() {
        let bus = Bus::default();
        drop(bus.publish(&live("a"), info()).unwrap());
        let graces = bus.inner.graces.clone();
        tokio::task::yield_now().await;
        assert!(graces.driver_running.load(Ordering::Acquire));
        drop(bus);
        tokio::task::yield_now().await;
        assert!(!graces.driver_running.load(Ordering::Acquire), "no task outlives the Bus");
    }
}
