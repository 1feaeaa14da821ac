//! The live CMAF packager: one Bus subscriber per live stream feeds a [`Segmenter`], and the
//! parts it produces are kept in memory — a bounded window of segments per track — for
//! LL-HLS ([`crate::hls`]) and DASH ([`crate::dash`]) to serve. Requests that wait for a part
//! or a playlist update watch the stream's version counter.

use bytes::Bytes;
use dashmap::DashMap;
use rill_media::cmaf::fmp4;
use rill_media::cmaf::{CmafSubscriber, CmafTrack, Part, SegmenterConfig, SegmenterEvent, TrackKind};
use rill_media::sync::{lock, read, write};
use rill_media::{Bus, Feed, StreamPath};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How segments are cut and how many are kept.
#[derive(Clone, Copy, Debug)]
pub struct PackagerConfig {
    pub segmenter: SegmenterConfig,
    /// Complete segments listed in a playlist (and kept downloadable, plus one).
    pub window_segments: usize,
    /// How long an ended stream's playlists stay up (with `EXT-X-ENDLIST`).
    pub linger: Duration,
}

impl Default for PackagerConfig {
    fn default() -> Self {
        PackagerConfig { segmenter: SegmenterConfig::default(), window_segments: 12, linger: Duration::from_secs(30) }
    }
}

impl PackagerConfig {
    pub fn segment_target(&self) -> Duration {
        self.segmenter.segment_target
    }

    pub fn part_target(&self) -> Duration {
        self.segmenter.part_target
    }
}

/// Packager counters, for metrics.
#[derive(Debug, Default)]
pub struct PackagerStats {
    pub streams: AtomicU64,
    pub parts: AtomicU64,
    pub segments: AtomicU64,
    pub bytes_out: AtomicU64,
    pub playlist_requests: AtomicU64,
    pub blocked_requests: AtomicU64,
    pub blocked_timeouts: AtomicU64,
    /// Times a stream's packager fell behind the live edge (frames lost) and resubscribed.
    pub resubscribes: AtomicU64,
}

/// Every live stream's packager, by stream name.
pub struct Packagers {
    streams: DashMap<String, Arc<LiveStream>>,
    config: PackagerConfig,
    pub stats: Arc<PackagerStats>,
    /// Bumped whenever a stream's packaging starts, for [`Packagers::packaged`].
    started: watch::Sender<()>,
}

impl Packagers {
    /// Packages every stream that starts on `bus` from now on (and those already live).
    pub fn spawn(bus: Bus, config: PackagerConfig) -> Arc<Packagers> {
        let packagers = Arc::new(Packagers {
            streams: DashMap::new(),
            config,
            stats: Arc::default(),
            started: watch::Sender::new(()),
        });
        let this = packagers.clone();
        tokio::spawn(async move { bus.for_each_started_stream(|path| this.start(&bus, path)).await });
        packagers
    }

    pub fn config(&self) -> &PackagerConfig {
        &self.config
    }

    /// The packaged stream `name` (or rendition `name/rendition`), while it is live or
    /// lingering after its end.
    pub fn get(&self, name: &str) -> Option<Arc<LiveStream>> {
        self.streams.get(name).map(|s| s.clone())
    }

    /// Waits until stream `name` (or rendition `name/rendition`) is packaged and not ended: a
    /// stream's packaging starts just after the stream (callers bound the wait).
    pub async fn packaged(&self, name: &str) -> Arc<LiveStream> {
        let mut started = self.started.subscribe();
        loop {
            started.borrow_and_update();
            if let Some(stream) = self.get(name).filter(|s| !s.state().ended) {
                return stream;
            }
            let _ = started.changed().await; // cannot fail: `self` holds the sender
        }
    }

    /// The packaged stream `name` once it is live (not ended), waiting for its packager to
    /// start until `deadline` (a stream just published registers a moment later).
    pub async fn wait_live(&self, name: &str, deadline: tokio::time::Instant) -> Option<Arc<LiveStream>> {
        tokio::time::timeout_at(deadline, self.packaged(name)).await.ok()
    }

    /// `EXT-X-RENDITION-REPORT`s of the other renditions of the stream `stream` belongs to, for
    /// a media playlist of `stream` (the reports of its own other tracks are in the playlist):
    /// a source reports its renditions' video; a rendition reports the source's tracks and its
    /// sibling renditions' video. URIs are relative to the media playlist.
    pub fn rendition_reports(&self, stream: &LiveStream) -> String {
        let mut out = String::new();
        let mut report = |uri: String, other: &LiveStream, kind: TrackKind| {
            if let Some(line) = other.state().track(kind).and_then(|t| crate::hls::rendition_report(&uri, t)) {
                out.push_str(&line);
            }
        };
        let video_uri = crate::hls::media_playlist_uri(TrackKind::Video);
        match stream.rendition() {
            None => {
                for rendition in self.renditions(&stream.name) {
                    let uri = format!("../{}/{video_uri}", rendition.rendition().unwrap_or_default());
                    report(uri, &rendition, TrackKind::Video);
                }
            }
            Some(own) => {
                let source = stream.source_name();
                if let Some(source) = self.get(source).filter(|s| !s.state().ended) {
                    for kind in [TrackKind::Video, TrackKind::Audio] {
                        report(format!("../../{}", crate::hls::media_playlist_uri(kind)), &source, kind);
                    }
                }
                for rendition in self.renditions(source).iter().filter(|r| r.rendition() != Some(own)) {
                    let uri = format!("../../{}/{video_uri}", rendition.rendition().unwrap_or_default());
                    report(uri, rendition, TrackKind::Video);
                }
            }
        }
        out
    }

    /// The names of the streams (not renditions) being packaged and not ended.
    pub fn live_names(&self) -> Vec<String> {
        self.streams
            .iter()
            .filter(|entry| entry.value().path.is_source() && !entry.value().state().ended)
            .map(|entry| entry.key().clone())
            .collect()
    }

    /// The live renditions of stream `name` (`live/<name>/<rendition>` with a video track),
    /// highest resolution first.
    /// Asked on every media playlist request: it reads the source's own list, not the registry.
    pub fn renditions(&self, name: &str) -> Vec<Arc<LiveStream>> {
        let Some(source) = self.get(name) else { return Vec::new() };
        let attached: Vec<Arc<LiveStream>> = lock(&source.renditions).iter().filter_map(Weak::upgrade).collect();
        let mut renditions: Vec<(u32, Arc<LiveStream>)> = attached
            .into_iter()
            .filter_map(|rendition| {
                let height = {
                    let st = rendition.state();
                    let video = st.track(TrackKind::Video)?;
                    if st.ended || video.last_complete_msn().is_none() {
                        return None;
                    }
                    video.track.codec.picture_size().map(|(_, height)| height)
                };
                Some((height.unwrap_or(0), rendition))
            })
            .collect();
        renditions.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        renditions.into_iter().map(|(_, stream)| stream).collect()
    }

    fn start(self: &Arc<Self>, bus: &Bus, path: &StreamPath) {
        // Live streams `live/<name>` and their video renditions `live/<name>/<rendition>`.
        let key = match &path.feed {
            Feed::Source => path.name.to_string(),
            Feed::Rendition(rendition) => format!("{}/{rendition}", path.name),
            // Derived feeds for WebRTC, not renditions players choose.
            Feed::Opus | Feed::WebRtc => return,
        };
        if let Some(existing) = self.streams.get(&key) {
            if !existing.state().ended {
                return; // already packaged (a lagged announcement, or the initial scan)
            }
        }
        let Ok(subscriber) = bus.subscribe_service(path) else { return };
        let mut stream = LiveStream::new(key.clone(), path.clone(), self.config, self.stats.clone());
        if !path.is_source() {
            stream.source = self.get(path.name.as_str());
        }
        let stream = Arc::new(stream);
        if let Some(source) = &stream.source {
            let mut renditions = lock(&source.renditions);
            renditions.retain(|r| r.strong_count() > 0);
            renditions.push(Arc::downgrade(&stream));
        }
        let name = key.as_str();
        self.streams.insert(key.clone(), stream.clone());
        self.stats.streams.fetch_add(1, Ordering::Relaxed);
        self.started.send_modify(|_| {});
        let (this, bus, path) = (self.clone(), bus.clone(), path.clone());
        let span = tracing::info_span!("packager", stream = name);
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let mut cmaf = CmafSubscriber::new(subscriber, this.config.segmenter);
                loop {
                    match cmaf.next().await {
                        Ok(Some(events)) => stream.apply(events.into_iter()),
                        Ok(None) => break,
                        // Still live: the playlist goes on after a discontinuity.
                        Err(behind) => match bus.subscribe_service(&path) {
                            Ok(subscriber) => {
                                tracing::warn!(error = %behind, "packager fell behind; resubscribed");
                                this.stats.resubscribes.fetch_add(1, Ordering::Relaxed);
                                cmaf.resubscribe(subscriber);
                            }
                            Err(_) => stream.apply(cmaf.finish().into_iter()),
                        },
                    }
                }
                stream.end();
                tracing::info!("stream ended; playlists end");
                tokio::time::sleep(this.config.linger).await;
                this.streams.remove_if(&stream.name, |_, s| Arc::ptr_eq(s, &stream));
                this.stats.streams.fetch_sub(1, Ordering::Relaxed);
            },
            span,
        ));
    }
}

/// One packaged live stream (or rendition).
pub struct LiveStream {
    /// `<name>`, or `<name>/<rendition>` for a rendition.
    pub name: String,
    /// The Bus path it packages.
    pub path: StreamPath,
    pub config: PackagerConfig,
    state: RwLock<LiveState>,
    version: watch::Sender<u64>,
    stats: Arc<PackagerStats>,
    /// Rendered media playlists of the current version: every player of a stream asks for the
    /// same text after each part, so it is rendered once per part, not once per request.
    playlists: std::sync::Mutex<Vec<(u64, TrackKind, crate::hls::Skip, Bytes)>>,
    /// When a player last asked for a playlist or segment (ms since the packager started).
    last_request_ms: AtomicU64,
    created: std::time::Instant,
    /// For a rendition, its source: the rendition's program date-times follow the source's
    /// clock (its frames arrive later, by the transcoding delay, but are the same instants), so
    /// players that align renditions by `EXT-X-PROGRAM-DATE-TIME` find no gap or overlap.
    source: Option<Arc<LiveStream>>,
    /// For a source, its renditions' packagers (weak: a rendition holds its source).
    renditions: std::sync::Mutex<Vec<Weak<LiveStream>>>,
}

/// What the packager holds of a stream.
#[derive(Debug, Default)]
pub struct LiveState {
    pub tracks: Vec<TrackTimeline>,
    /// Tracks that cannot be packaged, with the reason (for the API and logs).
    pub unsupported: Vec<String>,
    pub ended: bool,
    /// Wall-clock time of media time 0 (DASH `availabilityStartTime`).
    pub availability_start: Option<SystemTime>,
    /// Increases with each change of tracks (`init-<version>.mp4`).
    pub init_version: u32,
    /// When this packaging of the stream began (Unix ms). It prefixes every file name, so a
    /// cache never confuses the segments of a restarted stream with the previous ones.
    pub epoch: u64,
}

/// The segments of one track.
#[derive(Debug)]
pub struct TrackTimeline {
    pub track: Arc<CmafTrack>,
    pub init_version: u32,
    /// Oldest first; the last one may still be growing.
    pub segments: VecDeque<Segment>,
    /// Init segments of the versions still referenced by kept segments.
    pub inits: Vec<(u32, Bytes)>,
    /// Discontinuities that left the window (`EXT-X-DISCONTINUITY-SEQUENCE`).
    pub discontinuity_sequence: u64,
}

/// A CMAF segment: the parts written so far.
#[derive(Debug)]
pub struct Segment {
    pub msn: u64,
    pub init_version: u32,
    pub discontinuity: bool,
    pub wall_clock: SystemTime,
    /// Decode time of the first sample, in the track's timescale.
    pub decode_time: u64,
    /// Sum of the parts' durations, in the track's timescale.
    pub duration: u64,
    pub parts: Vec<PartEntry>,
    pub complete: bool,
    pub size: usize,
}

/// One part of a segment.
#[derive(Debug)]
pub struct PartEntry {
    pub index: u32,
    pub samples: u32,
    pub duration: u64,
    pub independent: bool,
    pub bytes: Bytes,
}

impl Segment {
    pub fn duration_secs(&self, timescale: u32) -> f64 {
        self.duration as f64 / timescale as f64
    }

    pub fn part(&self, index: u32) -> Option<&PartEntry> {
        self.parts.iter().find(|p| p.index == index)
    }

    /// Index of the next part, if the segment is still growing.
    pub fn next_part_index(&self) -> u32 {
        self.parts.last().map_or(0, |p| p.index + 1)
    }
}

impl TrackTimeline {
    pub fn kind(&self) -> TrackKind {
        self.track.kind
    }

    /// Segment `msn`, if kept. Numbers increase but may skip (an audio track silent for a
    /// whole segment has no segment of that number).
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let index = self.segments.binary_search_by_key(&msn, |s| s.msn).ok()?;
        self.segments.get(index)
    }

    /// The last complete segment's sequence number.
    pub fn last_complete_msn(&self) -> Option<u64> {
        self.segments.iter().rev().find(|s| s.complete).map(|s| s.msn)
    }

    /// The newest part: `(msn, index)`.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        self.segments.iter().rev().find_map(|s| s.parts.last().map(|p| (s.msn, p.index)))
    }

    /// The part a player should ask for next (`EXT-X-PRELOAD-HINT`).
    pub fn next_part(&self) -> (u64, u32) {
        match self.segments.back() {
            Some(s) if !s.complete => (s.msn, s.next_part_index()),
            Some(s) => (s.msn + 1, 0),
            None => (0, 0),
        }
    }

    pub fn init(&self, version: u32) -> Option<&Bytes> {
        self.inits.iter().find(|(v, _)| *v == version).map(|(_, b)| b)
    }

    /// Peak bits per second over the complete segments kept (or the growing one).
    pub fn peak_bitrate(&self) -> u64 {
        let ts = self.track.timescale;
        let rate = |s: &Segment| if s.duration > 0 { (s.size as f64 * 8.0 / s.duration_secs(ts)) as u64 } else { 0 };
        let complete = self.segments.iter().filter(|s| s.complete).map(rate).max();
        complete.or_else(|| self.segments.back().map(rate)).unwrap_or(0)
    }

    /// Average bits per second over the complete segments kept.
    pub fn average_bitrate(&self) -> u64 {
        let ts = self.track.timescale;
        let (bytes, ticks) =
            self.segments.iter().filter(|s| s.complete).fold((0usize, 0u64), |(b, t), s| (b + s.size, t + s.duration));
        if ticks == 0 {
            return self.peak_bitrate();
        }
        (bytes as f64 * 8.0 / (ticks as f64 / ts as f64)) as u64
    }
}

impl LiveStream {
    fn new(name: String, path: StreamPath, config: PackagerConfig, stats: Arc<PackagerStats>) -> LiveStream {
        let epoch = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let state = RwLock::new(LiveState { epoch, ..LiveState::default() });
        LiveStream {
            name,
            path,
            config,
            state,
            version: watch::Sender::new(0),
            stats,
            playlists: Default::default(),
            last_request_ms: AtomicU64::new(0),
            created: std::time::Instant::now(),
            source: None,
            renditions: Default::default(),
        }
    }

    /// The rendition this packager serves (`<rendition>` of `<name>/<rendition>`), `None` for
    /// the source.
    pub fn rendition(&self) -> Option<&str> {
        self.name.split_once('/').map(|(_, rendition)| rendition)
    }

    /// The name of the source stream (the stream itself for a source).
    pub fn source_name(&self) -> &str {
        self.name.split_once('/').map_or(self.name.as_str(), |(source, _)| source)
    }

    /// Notes that a player asked for this stream (HLS/DASH players are not Bus viewers).
    pub fn touch(&self) {
        self.last_request_ms.store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long since a player last asked for this stream (or since it started).
    pub fn unwatched_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_request_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// Waits until `check` answers or `deadline` passes (`None`).
    pub async fn wait_for<T>(
        &self,
        deadline: tokio::time::Instant,
        mut check: impl FnMut(&LiveState) -> Option<T>,
    ) -> Option<T> {
        let mut version = self.subscribe();
        loop {
            version.borrow_and_update();
            if let Some(answer) = check(&self.state()) {
                return Some(answer);
            }
            match tokio::time::timeout_at(deadline, version.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return check(&self.state()),
            }
        }
    }

    /// A read view of the stream (never held across an await).
    pub fn state(&self) -> RwLockReadGuard<'_, LiveState> {
        read(&self.state)
    }

    /// The media playlist of `kind`, rendered once per version of the stream.
    pub fn media_playlist(&self, kind: TrackKind, skip: crate::hls::Skip) -> Option<Bytes> {
        let st = self.state();
        let version = *self.version.borrow();
        let mut cache = lock(&self.playlists);
        if let Some((_, _, _, text)) = cache.iter().find(|(v, k, s, _)| *v == version && *k == kind && *s == skip) {
            return Some(text.clone());
        }
        let text = Bytes::from(crate::hls::media_playlist(&st, st.track(kind)?, &self.config, skip));
        cache.retain(|(v, ..)| *v == version);
        cache.push((version, kind, skip, text.clone()));
        Some(text)
    }

    /// Notified whenever a part, segment or the track set changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub fn stats(&self) -> &PackagerStats {
        &self.stats
    }

    fn apply(&self, events: impl Iterator<Item = SegmenterEvent>) {
        let mut changed = false;
        let source_clock = self.source.as_ref().and_then(|s| s.state().availability_start);
        let events = events.map(|mut event| {
            if let (SegmenterEvent::Part(part), Some(start)) = (&mut event, source_clock) {
                part.wall_clock = start + Duration::from_secs_f64(part.decode_secs().max(0.0));
            }
            event
        });
        {
            let mut st = write(&self.state);
            for event in events {
                changed = true;
                if let SegmenterEvent::Part(part) = &event {
                    self.stats.parts.fetch_add(1, Ordering::Relaxed);
                    if part.index == 0 {
                        self.stats.segments.fetch_add(1, Ordering::Relaxed);
                    }
                }
                st.apply(event, self.config.window_segments);
            }
        }
        if changed {
            self.version.send_modify(|v| *v += 1);
        }
    }

    fn end(&self) {
        {
            let mut st = write(&self.state);
            st.ended = true;
            for track in &mut st.tracks {
                if let Some(last) = track.segments.back_mut() {
                    last.complete = true;
                }
            }
        }
        self.version.send_modify(|v| *v += 1);
    }
}

impl LiveState {
    /// Takes in one event of the segmenter, keeping `window` complete segments per track.
    pub fn apply(&mut self, event: SegmenterEvent, window: usize) {
        match event {
            SegmenterEvent::Tracks(tracks) => self.set_tracks(tracks),
            SegmenterEvent::Unsupported { kind, reason } => {
                tracing::warn!(track = kind.as_str(), %reason, "track not packaged for HLS/DASH");
                let note = format!("{}: {reason}", kind.as_str());
                if !self.unsupported.contains(&note) {
                    self.unsupported.push(note);
                }
            }
            SegmenterEvent::Part(part) => self.add_part(part, window),
        }
    }

    pub fn track(&self, kind: TrackKind) -> Option<&TrackTimeline> {
        self.tracks.iter().find(|t| t.kind() == kind)
    }

    /// The newest complete segment of track `kind` as one playable fMP4 (init segment, `styp`,
    /// its parts), with its `(epoch, msn)`; `None` when there is none or it is still `shown`
    /// (nothing is copied then). Live thumbnails decode it.
    pub fn newest_segment_file(&self, kind: TrackKind, shown: Option<(u64, u64)>) -> Option<((u64, u64), Bytes)> {
        let track = self.track(kind)?;
        let segment = track.segments.iter().rev().find(|s| s.complete)?;
        if shown == Some((self.epoch, segment.msn)) {
            return None;
        }
        let init = track.init(segment.init_version)?;
        let styp = fmp4::segment_type();
        let mut file = bytes::BytesMut::with_capacity(init.len() + styp.len() + segment.size);
        file.extend_from_slice(init);
        file.extend_from_slice(&styp);
        for part in &segment.parts {
            file.extend_from_slice(&part.bytes);
        }
        Some(((self.epoch, segment.msn), file.freeze()))
    }

    pub fn track_named(&self, name: &str) -> Option<&TrackTimeline> {
        self.tracks.iter().find(|t| t.kind().as_str() == name)
    }

    fn set_tracks(&mut self, tracks: Vec<Arc<CmafTrack>>) {
        self.init_version += 1;
        let version = self.init_version;
        self.tracks.retain(|t| tracks.iter().any(|n| n.kind == t.kind()));
        for track in tracks {
            match self.tracks.iter_mut().find(|t| t.kind() == track.kind) {
                Some(timeline) => {
                    timeline.inits.push((version, track.init.clone()));
                    timeline.track = track;
                    timeline.init_version = version;
                }
                None => self.tracks.push(TrackTimeline {
                    inits: vec![(version, track.init.clone())],
                    track,
                    init_version: version,
                    segments: VecDeque::new(),
                    discontinuity_sequence: 0,
                }),
            }
        }
        self.tracks.sort_by_key(|t| t.kind() != TrackKind::Video);
    }

    fn add_part(&mut self, part: Part, window: usize) {
        if self.availability_start.is_none() {
            let offset = Duration::from_secs_f64(part.decode_secs().max(0.0));
            self.availability_start = part.wall_clock.checked_sub(offset);
        }
        let Some(timeline) = self.tracks.iter_mut().find(|t| t.kind() == part.kind) else { return };
        let entry = PartEntry {
            index: part.index,
            samples: part.samples,
            duration: part.duration,
            independent: part.independent,
            bytes: part.bytes,
        };
        match timeline.segments.back_mut() {
            Some(segment) if segment.msn == part.msn => {
                segment.duration += entry.duration;
                segment.size += entry.bytes.len();
                segment.parts.push(entry);
            }
            _ => {
                if let Some(previous) = timeline.segments.back_mut() {
                    previous.complete = true;
                }
                timeline.segments.push_back(Segment {
                    msn: part.msn,
                    init_version: timeline.init_version,
                    discontinuity: part.discontinuity,
                    wall_clock: part.wall_clock,
                    decode_time: part.decode_time,
                    duration: entry.duration,
                    size: fmp4::segment_type().len() + entry.bytes.len(),
                    parts: vec![entry],
                    complete: false,
                });
                // The window, plus one segment for downloads in flight, plus the growing one.
                while timeline.segments.len() > window + 2 {
                    if timeline.segments.pop_front().is_some_and(|s| s.discontinuity) {
                        timeline.discontinuity_sequence += 1;
                    }
                }
                let oldest = timeline.segments.front().map_or(timeline.init_version, |s| s.init_version);
                timeline.inits.retain(|(v, _)| *v >= oldest);
            }
        }
        if part.ends_segment {
            if let Some(segment) = timeline.segments.back_mut() {
                segment.complete = true;
            }
        }
    }
}

/// A file under `/live/<name>/<track>/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackFile {
    /// `media.m3u8`
    Playlist,
    /// `<epoch>-init-<version>.mp4`
    Init { epoch: u64, version: u32 },
    /// `<epoch>-<msn>.m4s`
    Segment { epoch: u64, msn: u64 },
    /// `<epoch>-<msn>.<part>.m4s`
    Part { epoch: u64, msn: u64, index: u32 },
}

impl TrackFile {
    /// Parses a file name; `None` for anything else (a 404).
    pub fn parse(name: &str) -> Option<TrackFile> {
        if name == "media.m3u8" {
            return Some(TrackFile::Playlist);
        }
        let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        let (epoch, rest) = name.split_once('-')?;
        if !digits(epoch) {
            return None;
        }
        let epoch = epoch.parse().ok()?;
        if let Some(version) = rest.strip_prefix("init-").and_then(|r| r.strip_suffix(".mp4")) {
            return digits(version)
                .then(|| version.parse().ok())
                .flatten()
                .map(|version| TrackFile::Init { epoch, version });
        }
        let stem = rest.strip_suffix(".m4s")?;
        match stem.split_once('.') {
            None => digits(stem).then(|| stem.parse().ok()).flatten().map(|msn| TrackFile::Segment { epoch, msn }),
            Some((msn, index)) if digits(msn) && digits(index) => {
                Some(TrackFile::Part { epoch, msn: msn.parse().ok()?, index: index.parse().ok()? })
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod query_tests {
    use super::fixtures::state;
    use super::*;

    #[test]
    fn newest_segment_file_is_init_styp_and_parts_once() {
        let config = PackagerConfig::default();
        let st = state(5100, &config, false); // complete: 0, 1
        let (id, file) = st.newest_segment_file(TrackKind::Video, None).unwrap();
        assert_eq!(id, (7, 1));
        let video = st.track(TrackKind::Video).unwrap();
        let init = video.init(1).unwrap();
        assert!(file.starts_with(init));
        assert_eq!(&file[init.len() + 4..init.len() + 8], b"styp");
        assert_eq!(file.len(), init.len() + video.segment(1).unwrap().size, "a segment's size counts its styp");
        assert_eq!(st.newest_segment_file(TrackKind::Video, Some(id)), None, "already shown: nothing copied");
        assert_eq!(LiveState::default().newest_segment_file(TrackKind::Video, None), None);
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A packaged stream built from synthetic frames, for playlist and MPD tests.
    use super::*;
    use rill_media::testing::{avc_aac_tracks, SyntheticStream};
    use rill_media::{CodecConfig, Tracks};

    /// `ms` of 30 fps video with a keyframe every 2 s and 48 kHz AAC, starting at a fixed wall clock.
    pub fn state(ms: i64, config: &PackagerConfig, ended: bool) -> LiveState {
        state_of(&avc_aac_tracks(true), ms, config, ended)
    }

    /// The same stream with `video` (e.g. HEVC, AV1) in place of the H.264 track.
    pub fn state_with_video(video: CodecConfig, ms: i64, config: &PackagerConfig) -> LiveState {
        state_of(&Tracks { video: Some(video), ..avc_aac_tracks(true) }, ms, config, false)
    }

    fn state_of(tracks: &Tracks, ms: i64, config: &PackagerConfig, ended: bool) -> LiveState {
        let mut segmenter = rill_media::cmaf::Segmenter::new(config.segmenter);
        let mut state = LiveState { epoch: 7, ..LiveState::default() };
        segmenter.set_tracks(tracks);
        let start = std::time::UNIX_EPOCH + Duration::from_secs(1_795_262_400);
        let stream = SyntheticStream { gop_ms: 2000, cts_ms: 0, audio: true, video_bytes: 1000 };
        for frame in stream.frames(0, ms) {
            segmenter.push(&frame, start + Duration::from_millis(frame.dts.as_millis() as u64));
        }
        if ended {
            segmenter.finish();
        }
        for event in segmenter.drain() {
            state.apply(event, config.window_segments);
        }
        state.ended = ended;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rill_media::{PublisherInfo, RenditionName, StreamName};

    #[tokio::test]
    async fn waits_for_a_stream_to_be_packaged() {
        let bus = Bus::default();
        let packagers = Packagers::spawn(bus.clone(), PackagerConfig::default());
        let waiting = {
            let packagers = packagers.clone();
            tokio::spawn(async move { packagers.packaged("a/360p").await })
        };
        let info = || PublisherInfo { protocol: "test", peer: String::new() };
        let name = StreamName::new("a").unwrap();
        let _source = bus.publish(&StreamPath::source(name.clone()), info()).unwrap();
        let _opus = bus.publish(&StreamPath::opus(name.clone()), info()).unwrap();
        let rendition = StreamPath::rendition(name, RenditionName::new("360p").unwrap());
        let _rendition = bus.publish(&rendition, info()).unwrap();
        let packaged = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("woken").unwrap();
        assert_eq!(packaged.path, rendition);
        assert_eq!(packaged.source.as_ref().map(|s| s.name.as_str()), Some("a"));
        assert_eq!(packagers.live_names(), ["a"], "the Opus feed is not packaged");
    }
}
