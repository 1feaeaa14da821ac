//! Viewer sessions, sans-IO: one [`Session`] per CMCD session id or server-side connection,
//! fed [`Report`]s (what one request, event or connection statistic says) with explicit
//! times, and read back as [`SessionRecord`]s.
//!
//! How a session's time is measured depends on what its viewer tells:
//! - a player that reports its state (CMCD v2 `sta`, in events or requests): time between two
//!   reports goes to the state in force (playing, rebuffering, …), each gap capped at
//!   [`MAX_STATE_GAP_MS`]; startup is `msd`, else the time from the session's first report to
//!   its first `playing`;
//! - a player that only fetches (no CMCD, or v1): it plays from its first media request to its
//!   last one;
//! - a connection (HTTP-FLV, RTMP, SRT, WHEP): it plays while it is open.
//!
//! A session is *live* (counted in concurrency) until it closes or goes quiet for
//! [`TrackerConfig::idle_ms`]; then [`Tracker::expire`] hands back its final record.

use crate::score::{overall_score, rebuffer_ratio, Outcome, ScoreWeights};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// The longest gap between two state reports that is counted as time in the state in force
/// (a player that went quiet longer than that was not watching for all of it).
pub const MAX_STATE_GAP_MS: i64 = 60_000;
/// A session qualifies as a view after this much playing time…
pub const VIEW_AFTER_MS: u64 = 10_000;
/// …or, for a video shorter than this, after more than half of it.
pub const SHORT_VIDEO_MS: u64 = 20_000;
/// Buckets of the retention curve (1 % each).
pub const RETENTION_BUCKETS: usize = 100;

/// How a viewer receives the stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Hls,
    Dash,
    Flv,
    Rtmp,
    Srt,
    Webrtc,
}

impl Protocol {
    pub const ALL: [Protocol; 6] =
        [Protocol::Flv, Protocol::Rtmp, Protocol::Srt, Protocol::Webrtc, Protocol::Hls, Protocol::Dash];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Hls => "hls",
            Protocol::Dash => "dash",
            Protocol::Flv => "flv",
            Protocol::Rtmp => "rtmp",
            Protocol::Srt => "srt",
            Protocol::Webrtc => "webrtc",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Its slot in per-protocol arrays (the order of [`Protocol::ALL`]).
    pub fn index(self) -> usize {
        Protocol::ALL.iter().position(|&p| p == self).unwrap_or(0)
    }
}

/// A player's state (CMCD v2 `sta`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlayState {
    Starting,
    Playing,
    Seeking,
    Rebuffering,
    Paused,
    Waiting,
    Ended,
    Fatal,
    Quit,
    Preloading,
}

impl PlayState {
    /// The session is over.
    fn is_final(self) -> bool {
        matches!(self, PlayState::Ended | PlayState::Fatal | PlayState::Quit)
    }
}

/// What is watched: a live stream (and the video its recording makes), or a video.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Content {
    pub stream: Option<String>,
    pub video: Option<String>,
    /// The video's duration, when it is a finished video (for retention and short views).
    pub duration_ms: Option<u64>,
}

impl Content {
    pub fn live(stream: &str, recording: Option<String>) -> Content {
        Content { stream: Some(stream.to_owned()), video: recording, duration_ms: None }
    }

    pub fn video(id: &str, duration_ms: u64) -> Content {
        Content { stream: None, video: Some(id.to_owned()), duration_ms: (duration_ms > 0).then_some(duration_ms) }
    }

    fn is_known(&self) -> bool {
        self.stream.is_some() || self.video.is_some()
    }
}

/// Who the viewer is, as far as analytics keeps it: fixed when the session opens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Viewer {
    /// A pseudonymous id: the first-party cookie, else a daily-salted hash of address and
    /// user agent (never the address itself).
    pub visitor: String,
    /// ISO 3166 alpha-2, when known.
    pub country: Option<String>,
    /// desktop, mobile, tablet, tv, bot, other.
    pub device: String,
    pub browser: String,
    pub os: String,
    /// The referring site's host, when another site linked to the player.
    pub referrer: Option<String>,
}

/// How a session is driven (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Driver {
    /// HTTP requests and player events.
    #[default]
    Player,
    /// An open connection.
    Connection,
}

/// What one observation says about a session. Every field is optional: a segment request
/// without CMCD says only that media was fetched.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub at_ms: i64,
    /// The protocol the report shows (`sf`, or a playlist or MPD fetched): it corrects a
    /// session opened from an event that did not say.
    pub protocol: Option<Protocol>,
    /// A media object (segment, part, frames) was delivered.
    pub media: bool,
    pub bytes: u64,
    pub state: Option<PlayState>,
    /// `msd`: media start delay.
    pub startup_ms: Option<u64>,
    /// `br` of a video object, or `pb` (the bitrate being played).
    pub bitrate_kbps: Option<u32>,
    /// `pt`: the playhead.
    pub playhead_ms: Option<u64>,
    /// The media time range a request fetched (VOD segments), when no playhead is reported.
    pub media_range_ms: Option<(u64, u64)>,
    /// `bs`: the buffer ran dry since the last report.
    pub starved: bool,
    /// `bsa`: stalls so far; `bsda`: their total duration.
    pub stalls: Option<u64>,
    pub stall_ms: Option<u64>,
    /// `dfa`: dropped frames so far.
    pub dropped_frames: Option<u64>,
    /// `ltc`: live latency.
    pub latency_ms: Option<u64>,
    /// Round-trip time (WebRTC receiver reports).
    pub rtt_ms: Option<u64>,
    /// Packets the viewer reported lost so far (WebRTC).
    pub lost_packets: Option<u64>,
    /// An error was reported (`e` event, `ec`).
    pub error: bool,
    /// The rendition fetched (live: `source` or a ladder rung's name).
    pub rendition: Option<String>,
    /// What the session watches, when the report says (`cid`, or the URL of a request).
    pub content: Option<Content>,
}

/// A session as stored and reported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub stream: Option<String>,
    pub video: Option<String>,
    pub protocol: Protocol,
    pub started_at: i64,
    pub last_seen: i64,
    /// When it closed or expired; `None` while it is live.
    pub ended_at: Option<i64>,
    pub playing_ms: u64,
    pub rebuffer_ms: u64,
    pub rebuffer_count: u64,
    pub startup_ms: Option<u64>,
    pub outcome: Outcome,
    pub errors: u64,
    /// Time-weighted bitrate over playing time.
    pub bitrate_kbps: Option<u64>,
    pub switches_up: u64,
    pub switches_down: u64,
    pub dropped_frames: u64,
    /// Mean live latency (`ltc`).
    pub latency_ms: Option<u64>,
    pub rtt_ms: Option<u64>,
    pub lost_packets: u64,
    pub bytes: u64,
    pub visitor: String,
    pub country: Option<String>,
    pub device: String,
    pub browser: String,
    pub os: String,
    pub referrer: Option<String>,
    /// The rendition watched longest.
    pub rendition: Option<String>,
    /// Which 1 % buckets of the video were watched (bit i = bucket i); in JSON a string of
    /// 32 hex digits (a number that wide does not survive JavaScript).
    #[serde(with = "hex_bitmap")]
    pub watched: u128,
    /// When it qualified as a view (see [`VIEW_AFTER_MS`]).
    pub view_at: Option<i64>,
    pub score: f64,
}

/// `u128` bitmaps as fixed-width hex strings.
mod hex_bitmap {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bits: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{bits:032x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        u128::from_str_radix(&text, 16).map_err(D::Error::custom)
    }
}

impl SessionRecord {
    /// Share (0–1) of the video's hundredths this session watched.
    pub fn watched_share(&self) -> f64 {
        self.watched.count_ones() as f64 / RETENTION_BUCKETS as f64
    }

    pub fn rebuffer_ratio(&self) -> f64 {
        rebuffer_ratio(self.playing_ms, self.rebuffer_ms)
    }

    /// This stored record updated with `newer` (a later record of the same session, from this
    /// node or another that saw part of it): the earliest start, the latest sighting, the
    /// larger of each counter, the union of the watched buckets, the first view, known values
    /// over unknown ones, and the latest protocol and score. Merging is idempotent, so a
    /// record written twice counts once.
    pub fn merge(&self, newer: &SessionRecord) -> SessionRecord {
        let or = |new: &Option<String>, old: &Option<String>| new.clone().or_else(|| old.clone());
        SessionRecord {
            id: self.id.clone(),
            stream: self.stream.clone().or_else(|| newer.stream.clone()),
            video: self.video.clone().or_else(|| newer.video.clone()),
            protocol: newer.protocol,
            started_at: self.started_at.min(newer.started_at),
            last_seen: self.last_seen.max(newer.last_seen),
            ended_at: newer.ended_at.or(self.ended_at),
            playing_ms: self.playing_ms.max(newer.playing_ms),
            rebuffer_ms: self.rebuffer_ms.max(newer.rebuffer_ms),
            rebuffer_count: self.rebuffer_count.max(newer.rebuffer_count),
            startup_ms: newer.startup_ms.or(self.startup_ms),
            outcome: if self.outcome == Outcome::Played { Outcome::Played } else { newer.outcome },
            errors: self.errors.max(newer.errors),
            bitrate_kbps: newer.bitrate_kbps.or(self.bitrate_kbps),
            switches_up: self.switches_up.max(newer.switches_up),
            switches_down: self.switches_down.max(newer.switches_down),
            dropped_frames: self.dropped_frames.max(newer.dropped_frames),
            latency_ms: newer.latency_ms.or(self.latency_ms),
            rtt_ms: newer.rtt_ms.or(self.rtt_ms),
            lost_packets: self.lost_packets.max(newer.lost_packets),
            bytes: self.bytes.max(newer.bytes),
            visitor: self.visitor.clone(),
            country: or(&newer.country, &self.country),
            device: self.device.clone(),
            browser: self.browser.clone(),
            os: self.os.clone(),
            referrer: or(&newer.referrer, &self.referrer),
            rendition: or(&newer.rendition, &self.rendition),
            watched: self.watched | newer.watched,
            view_at: self.view_at.or(newer.view_at),
            score: newer.score,
        }
    }
}

/// Lists `session` in `changed` (oldest change first) unless it is listed already.
fn mark_changed(changed: &mut VecDeque<String>, session: &mut Session, at_ms: i64) {
    if session.changed_since.is_none() {
        session.changed_since = Some(at_ms);
        changed.push_back(session.id.clone());
    }
}

/// One viewer session.
#[derive(Debug, Default)]
struct Session {
    id: String,
    driver: Driver,
    protocol: Protocol,
    content: Content,
    viewer: Viewer,
    started_ms: i64,
    last_seen_ms: i64,
    first_media_ms: Option<i64>,
    closed_ms: Option<i64>,
    /// The player has reported states: time is counted per state.
    stated: bool,
    state: Option<PlayState>,
    state_since_ms: i64,
    playing_ms: u64,
    rebuffer_ms: u64,
    stalls_seen: u64,
    /// In a stall that has not yet played again (a seek or nudge inside it is the same stall).
    in_stall: bool,
    stalls_reported: u64,
    stall_ms_reported: u64,
    startup_ms: Option<u64>,
    played: bool,
    failed: bool,
    errors: u64,
    bitrate: Option<u32>,
    bitrate_weight: f64,
    bitrate_time_ms: u64,
    switches_up: u64,
    switches_down: u64,
    dropped_frames: u64,
    latency_sum: u64,
    latency_n: u64,
    rtt_ms: Option<u64>,
    lost_packets: u64,
    bytes: u64,
    renditions: Vec<(String, u64)>,
    /// The player has sent an event (its silence may be longer).
    eventful: bool,
    /// Listed in [`Tracker::changed`] since then (changed since its last record was taken).
    changed_since: Option<i64>,
    rendition: Option<String>,
    watched: u128,
    last_playhead: Option<(i64, u64)>,
    view_at: Option<i64>,
}

impl Session {
    fn new(id: String, driver: Driver, protocol: Protocol, content: Content, viewer: Viewer, at_ms: i64) -> Session {
        Session {
            id,
            driver,
            protocol,
            content,
            viewer,
            started_ms: at_ms,
            last_seen_ms: at_ms,
            state_since_ms: at_ms,
            ..Session::default()
        }
    }

    /// Counts the time since the last state report towards the state in force.
    fn advance(&mut self, at_ms: i64) {
        if at_ms <= self.state_since_ms {
            return;
        }
        let dt = (at_ms - self.state_since_ms).min(MAX_STATE_GAP_MS) as u64;
        match self.state {
            Some(PlayState::Playing) => self.add_playing(dt),
            Some(PlayState::Rebuffering) if self.played => self.rebuffer_ms += dt,
            _ => {}
        }
        self.state_since_ms = at_ms;
    }

    fn add_playing(&mut self, dt: u64) {
        self.playing_ms += dt;
        if let Some(br) = self.bitrate {
            self.bitrate_weight += br as f64 * dt as f64;
            self.bitrate_time_ms += dt;
        }
        if let Some(r) = &self.rendition {
            match self.renditions.iter_mut().find(|(name, _)| name == r) {
                Some((_, ms)) => *ms += dt,
                None => self.renditions.push((r.clone(), dt)),
            }
        }
    }

    /// Applies a report. `trust_state`: its `sta` is current (a request-mode `sta` is not once
    /// the player sends events: it was written when the request was made, and a `ps` event
    /// for the change that followed may already have arrived).
    fn apply(&mut self, report: &Report, trust_state: bool) {
        let at = report.at_ms;
        let state = report.state.filter(|_| trust_state);
        if let Some(content) = &report.content {
            if !self.content.is_known() && content.is_known() {
                self.content = content.clone();
            }
        }
        if self.stated || state.is_some() {
            if !self.stated {
                // The first state report: what came before counts from here on.
                self.stated = true;
                self.state_since_ms = at.max(self.started_ms);
            }
            self.advance(at);
        } else if self.driver == Driver::Player && report.media {
            // A fetching player plays from its first media request to its last one.
            let first = *self.first_media_ms.get_or_insert(at);
            let playing = (at.max(first) - first) as u64;
            if playing > self.playing_ms {
                self.add_playing(playing - self.playing_ms);
            }
        }
        if let Some(protocol) = report.protocol {
            self.protocol = protocol;
        }
        if let Some(rendition) = &report.rendition {
            if self.rendition.as_ref() != Some(rendition) {
                self.rendition = Some(rendition.clone());
            }
        }
        if let Some(br) = report.bitrate_kbps.filter(|&b| b > 0) {
            match self.bitrate {
                Some(old) if br > old => self.switches_up += 1,
                Some(old) if br < old => self.switches_down += 1,
                _ => {}
            }
            self.bitrate = Some(br);
        }
        if report.media {
            self.first_media_ms.get_or_insert(at);
            if !self.stated {
                self.played = true;
            }
        }
        self.bytes += report.bytes;
        // `bs` (starved since the last request) counts stalls of players that do not report
        // their state; a player that does counts each stall once, when it enters rebuffering.
        if report.starved && self.played && !self.stated {
            self.stalls_seen += 1;
        }
        self.stalls_reported = self.stalls_reported.max(report.stalls.unwrap_or(0));
        self.stall_ms_reported = self.stall_ms_reported.max(report.stall_ms.unwrap_or(0));
        self.dropped_frames = self.dropped_frames.max(report.dropped_frames.unwrap_or(0));
        self.lost_packets = self.lost_packets.max(report.lost_packets.unwrap_or(0));
        if let Some(l) = report.latency_ms {
            self.latency_sum += l;
            self.latency_n += 1;
        }
        if report.rtt_ms.is_some() {
            self.rtt_ms = report.rtt_ms;
        }
        if report.error {
            self.errors += 1;
        }
        if let Some(msd) = report.startup_ms {
            self.startup_ms.get_or_insert(msd);
        }
        self.watch(report);
        if let Some(state) = state {
            self.enter(state, at);
        }
        self.last_seen_ms = self.last_seen_ms.max(at);
        self.qualify(at);
    }

    fn enter(&mut self, state: PlayState, at: i64) {
        if self.state == Some(state) {
            return;
        }
        if self.closed_ms.is_some_and(|closed| at <= closed) && !state.is_final() {
            // A report sent before the end, arriving after it, does not reopen the session.
            return;
        }
        if state == PlayState::Playing {
            self.in_stall = false;
        }
        match state {
            PlayState::Playing if !self.played => {
                self.played = true;
                self.startup_ms.get_or_insert((at - self.started_ms).max(0) as u64);
            }
            PlayState::Rebuffering if self.played && !self.in_stall => {
                self.stalls_seen += 1;
                self.in_stall = true;
            }
            PlayState::Fatal if !self.played => self.failed = true,
            _ => {}
        }
        if state == PlayState::Fatal {
            self.errors = self.errors.max(1);
        }
        if state.is_final() {
            self.closed_ms = Some(at);
        } else if self.closed_ms.is_some() {
            // Replayed after ending: the same session goes on.
            self.closed_ms = None;
        }
        self.state = Some(state);
        self.state_since_ms = at;
    }

    /// Marks the retention buckets a report shows were watched.
    fn watch(&mut self, report: &Report) {
        let Some(duration) = self.content.duration_ms.filter(|&d| d > 0) else {
            return;
        };
        let bucket = |ms: u64| ((ms.min(duration.saturating_sub(1)) * RETENTION_BUCKETS as u64) / duration) as u32;
        let mut mark = |from: u64, to: u64| {
            for b in bucket(from)..=bucket(to) {
                self.watched |= 1u128 << b;
            }
        };
        if let Some(pt) = report.playhead_ms {
            match self.last_playhead {
                // Played continuously from the last playhead to this one.
                Some((then, last)) if pt >= last && pt - last <= 2 * (report.at_ms - then).max(0) as u64 + 1000 => {
                    mark(last, pt)
                }
                _ => mark(pt, pt),
            }
            self.last_playhead = Some((report.at_ms, pt));
        } else if let (Some((from, to)), None) = (report.media_range_ms, self.last_playhead) {
            mark(from, to.saturating_sub(1).max(from));
        }
    }

    fn qualify(&mut self, at: i64) {
        if self.view_at.is_some() || !self.played {
            return;
        }
        let short_done = self.content.duration_ms.is_some_and(|d| {
            d < SHORT_VIDEO_MS
                && (self.playing_ms * 2 > d || self.watched.count_ones() as usize * 2 > RETENTION_BUCKETS)
        });
        if self.playing_ms >= VIEW_AFTER_MS || short_done {
            self.view_at = Some(at);
        }
    }

    /// Brings a connection's or a live state's time up to `now`.
    fn tick(&mut self, now: i64) {
        match self.driver {
            Driver::Connection if self.closed_ms.is_none() => {
                let playing = (now - self.started_ms).max(0) as u64;
                if playing > self.playing_ms {
                    let dt = playing - self.playing_ms;
                    self.add_playing(dt);
                }
                self.last_seen_ms = self.last_seen_ms.max(now);
                self.qualify(now);
            }
            _ => {}
        }
    }

    fn record(&self, weights: &ScoreWeights) -> SessionRecord {
        let outcome = if self.played {
            Outcome::Played
        } else if self.failed || self.errors > 0 {
            Outcome::Failed
        } else {
            Outcome::ExitBeforeStart
        };
        let rebuffer_ms = self.rebuffer_ms.max(self.stall_ms_reported);
        let rebuffer_count = self.stalls_seen.max(self.stalls_reported);
        let ratio = rebuffer_ratio(self.playing_ms, rebuffer_ms);
        let rendition = self.renditions.iter().max_by_key(|(_, ms)| *ms).map(|(r, _)| r.clone());
        SessionRecord {
            id: self.id.clone(),
            stream: self.content.stream.clone(),
            video: self.content.video.clone(),
            protocol: self.protocol,
            started_at: self.started_ms,
            last_seen: self.last_seen_ms,
            ended_at: self.closed_ms,
            playing_ms: self.playing_ms,
            rebuffer_ms,
            rebuffer_count,
            startup_ms: self.startup_ms,
            outcome,
            errors: self.errors,
            bitrate_kbps: (self.bitrate_time_ms > 0)
                .then(|| (self.bitrate_weight / self.bitrate_time_ms as f64).round() as u64)
                .or(self.bitrate.map(u64::from)),
            switches_up: self.switches_up,
            switches_down: self.switches_down,
            dropped_frames: self.dropped_frames,
            latency_ms: (self.latency_n > 0).then(|| self.latency_sum / self.latency_n),
            rtt_ms: self.rtt_ms,
            lost_packets: self.lost_packets,
            bytes: self.bytes,
            visitor: self.viewer.visitor.clone(),
            country: self.viewer.country.clone(),
            device: self.viewer.device.clone(),
            browser: self.viewer.browser.clone(),
            os: self.viewer.os.clone(),
            referrer: self.viewer.referrer.clone(),
            rendition: rendition.or_else(|| self.rendition.clone()),
            watched: self.watched,
            view_at: self.view_at,
            score: overall_score(weights, outcome, self.startup_ms, rebuffer_count, ratio),
        }
    }
}

/// Limits and timing of the [`Tracker`].
#[derive(Clone, Debug)]
pub struct TrackerConfig {
    /// A player session with no request or event for this long has left.
    pub idle_ms: i64,
    /// A session that has sent events (whose heartbeats may be 30 s apart) has left after
    /// this much silence.
    pub event_idle_ms: i64,
    /// Sessions tracked at most; more are refused (and counted).
    pub max_sessions: usize,
    pub weights: ScoreWeights,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            idle_ms: 20_000,
            event_idle_ms: 45_000,
            max_sessions: 100_000,
            weights: ScoreWeights::default(),
        }
    }
}

/// The tracker refuses a new session because it holds [`TrackerConfig::max_sessions`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("too many viewer sessions ({0}); new ones are not tracked")]
pub struct TooManySessions(pub usize);

/// Every live session.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    sessions: HashMap<String, Session>,
    /// Sessions that changed since [`Tracker::take_changed`] took them, oldest change first.
    changed: VecDeque<String>,
}

/// Viewers now, by protocol (indexed like [`Protocol::ALL`]).
pub type ByProtocol = [u64; 6];

impl Tracker {
    pub fn new(config: TrackerConfig) -> Tracker {
        Tracker { config, sessions: HashMap::new(), changed: VecDeque::new() }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Applies `report` to session `id` of a player, opening it (with what `open` says) if
    /// it is new.
    pub fn observe(
        &mut self,
        id: &str,
        open: impl FnOnce() -> (Protocol, Content, Viewer),
        report: &Report,
        from_event: bool,
    ) -> Result<(), TooManySessions> {
        let session = match self.sessions.get_mut(id) {
            Some(s) => s,
            None => {
                if self.sessions.len() >= self.config.max_sessions {
                    return Err(TooManySessions(self.config.max_sessions));
                }
                let (protocol, content, viewer) = open();
                let session = Session::new(id.to_owned(), Driver::Player, protocol, content, viewer, report.at_ms);
                self.sessions.entry(id.to_owned()).or_insert(session)
            }
        };
        session.apply(report, from_event || !session.eventful);
        session.eventful |= from_event;
        mark_changed(&mut self.changed, session, report.at_ms);
        Ok(())
    }

    /// Opens the session of a connection (it plays until [`Tracker::close`]).
    pub fn open_connection(
        &mut self,
        id: &str,
        protocol: Protocol,
        content: Content,
        viewer: Viewer,
        at_ms: i64,
    ) -> Result<(), TooManySessions> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(TooManySessions(self.config.max_sessions));
        }
        let mut session = Session::new(id.to_owned(), Driver::Connection, protocol, content, viewer, at_ms);
        session.played = true;
        mark_changed(&mut self.changed, &mut session, at_ms);
        self.sessions.insert(id.to_owned(), session);
        Ok(())
    }

    /// Applies a connection's statistics (bytes, RTCP figures).
    pub fn update_connection(&mut self, id: &str, report: &Report) {
        if let Some(session) = self.sessions.get_mut(id) {
            session.tick(report.at_ms);
            session.apply(report, true);
            mark_changed(&mut self.changed, session, report.at_ms);
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.sessions.contains_key(id)
    }

    /// Adds bytes delivered to a session that still exists (a response body that streamed
    /// after its request was observed). A session already gone stays gone.
    pub fn delivered(&mut self, id: &str, bytes: u64) {
        if let Some(session) = self.sessions.get_mut(id) {
            session.bytes += bytes;
            mark_changed(&mut self.changed, session, session.last_seen_ms);
        }
    }

    /// Closes a connection's session (`failed`: it ended on an error before any media).
    pub fn close(&mut self, id: &str, at_ms: i64, failed: bool) {
        if let Some(session) = self.sessions.get_mut(id) {
            session.tick(at_ms);
            session.closed_ms.get_or_insert(at_ms);
            if failed {
                session.errors += 1;
            }
            mark_changed(&mut self.changed, session, at_ms);
        }
    }

    fn idle_ms(&self, session: &Session) -> i64 {
        if session.eventful {
            self.config.event_idle_ms
        } else {
            self.config.idle_ms
        }
    }

    /// Whether a session counts as a viewer now.
    fn is_live(&self, session: &Session, now: i64) -> bool {
        if session.closed_ms.is_some() {
            return false;
        }
        match session.driver {
            Driver::Connection => true,
            Driver::Player => {
                now - session.last_seen_ms <= self.idle_ms(session)
                    && session.state != Some(PlayState::Paused)
                    && session.content.is_known()
            }
        }
    }

    /// Viewers now of each live stream, by protocol.
    pub fn viewers_now(&self, now: i64) -> HashMap<String, ByProtocol> {
        let mut out: HashMap<String, ByProtocol> = HashMap::new();
        for session in self.sessions.values() {
            if let (true, Some(stream)) = (self.is_live(session, now), &session.content.stream) {
                let viewers = match out.get_mut(stream) {
                    Some(viewers) => viewers,
                    None => out.entry(stream.clone()).or_default(),
                };
                viewers[session.protocol.index()] += 1;
            }
        }
        out
    }

    /// Viewers now of one stream, by protocol.
    pub fn stream_viewers_now(&self, stream: &str, now: i64) -> ByProtocol {
        let mut out = ByProtocol::default();
        for session in self.sessions.values() {
            if session.content.stream.as_deref() == Some(stream) && self.is_live(session, now) {
                out[session.protocol.index()] += 1;
            }
        }
        out
    }

    /// Sessions changed since their last record was taken.
    pub fn changed_len(&self) -> usize {
        self.changed.len()
    }

    /// Lists every open connection as changed at `now` (they play on without reporting).
    pub fn mark_connections_changed(&mut self, now: i64) {
        for session in self.sessions.values_mut().filter(|s| s.driver == Driver::Connection) {
            mark_changed(&mut self.changed, session, now);
        }
    }

    /// At most `max` of the sessions that changed at least `settle_ms` before `now`, oldest
    /// change first, as they are now (connections brought up to `now`). A session that keeps
    /// changing is thus taken once per `settle_ms` at most; callers take them in pieces, so
    /// that no single hold of the tracker builds thousands of records. (Sessions that end are
    /// taken by [`Tracker::expire`] at once.)
    pub fn take_changed(&mut self, now: i64, max: usize, settle_ms: i64) -> Vec<SessionRecord> {
        let weights = self.config.weights;
        let mut records = Vec::new();
        while records.len() < max {
            let Some(id) = self.changed.front() else { break };
            match self.sessions.get_mut(id) {
                Some(s) if s.changed_since.is_some_and(|since| since + settle_ms > now) => break,
                Some(s) => {
                    s.changed_since = None;
                    s.tick(now);
                    records.push(s.record(&weights));
                }
                None => {}
            }
            self.changed.pop_front();
        }
        records
    }

    /// Removes the sessions that closed or went quiet, and returns their final records.
    pub fn expire(&mut self, now: i64) -> Vec<SessionRecord> {
        let weights = self.config.weights;
        let over: Vec<String> = self
            .sessions
            .values()
            .filter(|s| {
                s.closed_ms.is_some_and(|c| now >= c)
                    || (s.driver == Driver::Player && now - s.last_seen_ms > self.idle_ms(s))
            })
            .map(|s| s.id.clone())
            .collect();
        over.iter()
            .filter_map(|id| self.sessions.remove(id))
            .map(|mut s| {
                s.tick(now);
                if s.closed_ms.is_none() {
                    // Went quiet: it ended at its last sign of life.
                    s.advance(s.last_seen_ms);
                    s.closed_ms = Some(s.last_seen_ms);
                }
                s.record(&weights)
            })
            .collect()
    }

    /// Every live session's current record (for the API's list of sessions in progress).
    pub fn snapshot(&self) -> Vec<SessionRecord> {
        self.sessions.values().map(|s| s.record(&self.config.weights)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> Viewer {
        Viewer {
            visitor: "v1".into(),
            device: "desktop".into(),
            browser: "Chrome".into(),
            os: "Linux".into(),
            ..Default::default()
        }
    }

    fn open_live() -> (Protocol, Content, Viewer) {
        (Protocol::Hls, Content::live("cam", Some("vid1".into())), viewer())
    }

    fn state(at_ms: i64, state: PlayState) -> Report {
        Report { at_ms, state: Some(state), ..Default::default() }
    }

    #[test]
    fn player_states_give_startup_playing_and_rebuffer_time() {
        let mut t = Tracker::new(TrackerConfig::default());
        let reports = [
            state(1_000, PlayState::Starting),
            state(1_800, PlayState::Playing),
            state(11_800, PlayState::Rebuffering),
            state(13_800, PlayState::Playing),
            state(21_800, PlayState::Ended),
        ];
        for r in &reports {
            t.observe("s1", open_live, r, true).unwrap();
        }
        let records = t.expire(21_800);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.startup_ms, Some(800));
        assert_eq!(r.playing_ms, 18_000);
        assert_eq!(r.rebuffer_ms, 2_000);
        assert_eq!(r.rebuffer_count, 1);
        assert_eq!(r.outcome, Outcome::Played);
        assert_eq!(r.view_at, Some(11_800));
        assert_eq!(r.ended_at, Some(21_800));
        assert!((r.rebuffer_ratio() - 0.1).abs() < 1e-9);
        assert!(t.is_empty());
    }

    #[test]
    fn a_stall_told_by_an_event_and_by_requests_counts_once() {
        // What hls.js sends for one stall: a `ps` event (sta=r), then requests carrying `bs`
        // and `sta=r`, one of which, built before the stall ended, arrives after the `ps`
        // event that ended it.
        let mut t = Tracker::new(TrackerConfig::default());
        let request = |at, state, starved| Report { at_ms: at, state: Some(state), starved, ..Default::default() };
        t.observe("h", open_live, &state(0, PlayState::Starting), true).unwrap();
        t.observe("h", open_live, &state(1_000, PlayState::Playing), true).unwrap();
        t.observe("h", open_live, &state(6_000, PlayState::Rebuffering), true).unwrap();
        t.observe("h", open_live, &request(6_050, PlayState::Rebuffering, true), false).unwrap();
        // hls.js nudges the playhead inside the stall: the same stall.
        t.observe("h", open_live, &state(6_200, PlayState::Seeking), true).unwrap();
        t.observe("h", open_live, &state(6_210, PlayState::Rebuffering), true).unwrap();
        t.observe("h", open_live, &state(6_500, PlayState::Playing), true).unwrap();
        t.observe("h", open_live, &request(6_600, PlayState::Rebuffering, false), false).unwrap();
        t.observe("h", open_live, &request(9_000, PlayState::Playing, false), false).unwrap();
        t.observe("h", open_live, &state(11_000, PlayState::Quit), true).unwrap();
        let r = t.expire(11_000).pop().unwrap();
        assert_eq!(r.rebuffer_count, 1);
        assert_eq!(r.rebuffer_ms, 490);
        assert_eq!(r.playing_ms, 9_500);
    }

    #[test]
    fn a_player_without_events_counts_stalls_from_bs() {
        let mut t = Tracker::new(TrackerConfig::default());
        for (at, starved) in [(0, false), (1_000, false), (2_000, true), (3_000, false), (4_000, true)] {
            let r = Report { at_ms: at, media: true, starved, ..Default::default() };
            t.observe("v1", open_live, &r, false).unwrap();
        }
        assert_eq!(t.snapshot()[0].rebuffer_count, 2);
    }

    #[test]
    fn a_late_report_does_not_reopen_an_ended_session() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.observe("q", open_live, &state(0, PlayState::Playing), true).unwrap();
        t.observe("q", open_live, &state(12_000, PlayState::Quit), true).unwrap();
        // A heartbeat flushed by the closing player, sent before the quit.
        t.observe("q", open_live, &state(11_900, PlayState::Playing), true).unwrap();
        assert_eq!(t.stream_viewers_now("cam", 12_100)[Protocol::Hls.index()], 0);
        let r = t.expire(12_100).pop().unwrap();
        assert_eq!((r.playing_ms, r.ended_at), (12_000, Some(12_000)));
    }

    #[test]
    fn fetching_player_plays_from_first_to_last_media_request_and_expires_when_quiet() {
        let mut t = Tracker::new(TrackerConfig::default());
        for i in 0..=15 {
            let r = Report { at_ms: 5_000 + i * 1_000, media: true, bytes: 100, ..Default::default() };
            t.observe("h1", open_live, &r, false).unwrap();
        }
        assert_eq!(t.stream_viewers_now("cam", 20_000)[Protocol::Hls.index()], 1);
        assert_eq!(t.stream_viewers_now("cam", 41_000)[Protocol::Hls.index()], 0);
        assert!(t.expire(30_000).is_empty());
        let r = t.expire(41_000).pop().unwrap();
        assert_eq!(r.playing_ms, 15_000);
        assert_eq!(r.bytes, 1_600);
        assert_eq!(r.view_at, Some(15_000));
        assert_eq!(r.ended_at, Some(20_000));
    }

    #[test]
    fn a_changed_session_is_taken_once_per_change_in_pieces() {
        let mut t = Tracker::new(TrackerConfig::default());
        for id in ["a", "b", "c"] {
            for at in [0, 1_000, 2_000] {
                t.observe(id, open_live, &state(at, PlayState::Playing), true).unwrap();
            }
        }
        assert_eq!(t.changed_len(), 3);
        let mut ids: Vec<String> = t.take_changed(2_000, 2, 0).into_iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), 2);
        ids.extend(t.take_changed(2_000, 2, 0).into_iter().map(|r| r.id));
        ids.sort();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(t.take_changed(2_000, 2, 0).is_empty());
        t.observe("b", open_live, &state(3_000, PlayState::Playing), true).unwrap();
        let again: Vec<String> = t.take_changed(3_000, 10, 0).into_iter().map(|r| r.id).collect();
        assert_eq!(again, ["b"]);
        // A session that keeps changing is taken once per settling time.
        t.observe("c", open_live, &state(4_000, PlayState::Playing), true).unwrap();
        t.observe("c", open_live, &state(9_000, PlayState::Playing), true).unwrap();
        assert!(t.take_changed(13_999, 10, 10_000).is_empty());
        assert_eq!(t.take_changed(14_000, 10, 10_000).len(), 1);
        assert!(t.take_changed(14_000, 10, 10_000).is_empty());
    }

    #[test]
    fn a_five_second_visit_is_not_a_view() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.observe("a", open_live, &state(0, PlayState::Playing), true).unwrap();
        t.observe("a", open_live, &state(5_000, PlayState::Quit), true).unwrap();
        let r = t.expire(5_000).pop().unwrap();
        assert_eq!(r.playing_ms, 5_000);
        assert_eq!(r.view_at, None);
    }

    #[test]
    fn leaving_before_the_first_frame_and_failing_are_told_apart() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.observe("ebvs", open_live, &state(0, PlayState::Starting), true).unwrap();
        t.observe("ebvs", open_live, &state(3_000, PlayState::Quit), true).unwrap();
        t.observe("fail", open_live, &state(0, PlayState::Starting), true).unwrap();
        t.observe("fail", open_live, &state(1_000, PlayState::Fatal), true).unwrap();
        let mut records = t.expire(3_000);
        records.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(records[0].outcome, Outcome::ExitBeforeStart);
        assert_eq!(records[0].score, 50.0);
        assert_eq!(records[1].outcome, Outcome::Failed);
        assert_eq!(records[1].score, 0.0);
    }

    #[test]
    fn bitrate_is_time_weighted_and_switches_are_counted() {
        let mut t = Tracker::new(TrackerConfig::default());
        let r = |at, br| Report {
            at_ms: at,
            bitrate_kbps: Some(br),
            state: Some(PlayState::Playing),
            ..Default::default()
        };
        t.observe("b", open_live, &r(0, 1000), true).unwrap();
        t.observe("b", open_live, &r(10_000, 3000), true).unwrap();
        t.observe("b", open_live, &r(20_000, 2000), true).unwrap();
        t.observe("b", open_live, &state(30_000, PlayState::Ended), true).unwrap();
        let rec = t.expire(30_000).pop().unwrap();
        assert_eq!(rec.bitrate_kbps, Some(2000));
        assert_eq!((rec.switches_up, rec.switches_down), (1, 1));
    }

    #[test]
    fn connections_play_while_open_and_count_as_viewers() {
        let mut t = Tracker::new(TrackerConfig::default());
        t.open_connection("c1", Protocol::Flv, Content::live("cam", None), viewer(), 0).unwrap();
        t.open_connection("c2", Protocol::Rtmp, Content::live("cam", None), viewer(), 0).unwrap();
        let now = t.stream_viewers_now("cam", 600_000);
        assert_eq!((now[Protocol::Flv.index()], now[Protocol::Rtmp.index()]), (1, 1));
        t.close("c1", 12_000, false);
        let r = t.expire(12_000).pop().unwrap();
        assert_eq!((r.id.as_str(), r.playing_ms, r.view_at), ("c1", 12_000, Some(12_000)));
        assert_eq!(t.stream_viewers_now("cam", 12_000)[Protocol::Flv.index()], 0);
    }

    #[test]
    fn retention_marks_what_the_playhead_crossed() {
        let mut t = Tracker::new(TrackerConfig::default());
        let open = || (Protocol::Dash, Content::video("v", 100_000), viewer());
        let r =
            |at, pt| Report { at_ms: at, playhead_ms: Some(pt), state: Some(PlayState::Playing), ..Default::default() };
        t.observe("r", open, &r(0, 0), true).unwrap();
        t.observe("r", open, &r(10_000, 10_000), true).unwrap();
        t.observe("r", open, &r(20_000, 19_500), true).unwrap();
        // A seek far ahead marks only where it landed.
        t.observe("r", open, &r(21_000, 80_000), true).unwrap();
        let rec = t.expire(100_000).pop().unwrap();
        assert_eq!(rec.watched.count_ones(), 21);
        assert!(rec.watched & (1 << 80) != 0 && rec.watched & (1 << 50) == 0);
    }

    #[test]
    fn a_short_video_is_a_view_past_half() {
        let mut t = Tracker::new(TrackerConfig::default());
        let open = || (Protocol::Hls, Content::video("v", 8_000), viewer());
        t.observe("s", open, &state(0, PlayState::Playing), true).unwrap();
        t.observe("s", open, &state(3_000, PlayState::Playing), true).unwrap();
        assert_eq!(t.snapshot()[0].view_at, None);
        t.observe("s", open, &state(4_500, PlayState::Ended), true).unwrap();
        assert_eq!(t.expire(5_000)[0].view_at, Some(4_500));
    }

    #[test]
    fn the_tracker_is_bounded() {
        let mut t = Tracker::new(TrackerConfig { max_sessions: 2, ..Default::default() });
        let r = Report::default();
        t.observe("1", open_live, &r, false).unwrap();
        t.observe("2", open_live, &r, false).unwrap();
        assert_eq!(t.observe("3", open_live, &r, false), Err(TooManySessions(2)));
        t.observe("1", open_live, &r, false).unwrap();
    }
}
