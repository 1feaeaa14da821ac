//! The only tokio code of the crate: the media socket (one UDP port for every session), the
//! receive loop that routes datagrams with [`UdpMux`], and one task per session that pumps its
//! sans-IO [`Session`] (datagrams, timers, Bus frames) and sends what it produces.

use crate::error::WebRtcError;
use crate::sdp::Offer;
use crate::sdp::VideoOrigin;
use crate::session::{Output, Role, Session, SessionParams, WhepDerived};
use crate::udp_mux::{Route, UdpMux};
use crate::whep::{AudioSource, Origin};
use crate::whip::IngestAction;
use bytes::BytesMut;
use rill_media::sync::lock;
use rill_media::{Bus, BusError, Delivery, Feed, Publisher, PublisherInfo, StreamPath, Subscriber};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

/// `[webrtc]` settings.
#[derive(Clone, Debug)]
pub struct WebRtcConfig {
    pub udp_listen: SocketAddr,
    /// Addresses advertised as host candidates; empty: 127.0.0.1 and this host's IPv4 address
    /// on its default route (or the listen address when it is not a wildcard).
    pub public_ips: Vec<IpAddr>,
    pub stun_servers: Vec<String>,
    /// A session whose ICE/DTLS has not completed by then is reclaimed.
    pub session_timeout: Duration,
    pub max_sessions: usize,
}

/// Starts (and keeps while the returned guard is held) a feed derived from a source stream;
/// `None` when it cannot be made. Supplied by the binary (this crate does not know the transcoder).
pub type FeedFn = Arc<dyn Fn(&Bus, &StreamPath) -> Option<Box<dyn std::any::Any + Send>> + Send + Sync>;
/// The derived Opus feed of a stream (`live/<name>/opus`) for a source whose audio is not
/// Opus: the transcoder's `OpusFeeds::acquire`.
pub type OpusFeedFn = FeedFn;

/// What the transcoder derives for WHEP viewers.
#[derive(Clone, Default)]
pub struct DerivedFeeds {
    /// `live/<name>/opus` for a source whose audio is not Opus.
    pub opus: Option<FeedFn>,
    /// `live/<name>/webrtc` (Constrained Baseline H.264) for viewers that cannot decode the
    /// source's video; `None` (transcoding disabled): such viewers are refused (406).
    pub rendition: Option<FeedFn>,
}

/// Counters and gauges over all sessions, for metrics.
#[derive(Debug, Default)]
pub struct WebRtcStats {
    pub whip_sessions: AtomicU64,
    pub whep_sessions: AtomicU64,
    pub sessions_started: AtomicU64,
    /// Sessions reclaimed because ICE/DTLS did not complete within `session_timeout`.
    pub sessions_timed_out: AtomicU64,
    pub datagrams_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Datagrams no session claimed (unknown ufrag/address, garbage).
    pub datagrams_unroutable: AtomicU64,
    /// Datagrams dropped because a session's queue was full.
    pub datagrams_dropped: AtomicU64,
    pub nacks_received: AtomicU64,
    pub plis_received: AtomicU64,
    pub plis_sent: AtomicU64,
    /// Packets viewers reported lost (sum of the latest cumulative counts of ended and live sessions).
    pub packets_lost: AtomicU64,
    /// WHIP access units dropped by the depacketizer (loss not repaired in time, malformed).
    pub ingest_frames_dropped: AtomicU64,
}

/// A session as the API shows it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub id: String,
    pub role: Role,
    pub path: StreamPath,
    pub peer: String,
    pub connected: bool,
    pub started: Instant,
    pub rtt_ms: Option<f64>,
    pub packets_lost: u64,
    pub nacks_received: u64,
    pub plis_received: u64,
    pub plis_sent: u64,
    pub audio: &'static str,
    /// WHEP: `source`, `webrtc rendition` or `none`.
    pub video: &'static str,
    /// WHEP: why the viewer gets that video (source profile, offered entry, what it lacks).
    pub video_reason: Option<String>,
}

/// A created session: the resource id (for `Location`) and the SDP answer.
#[derive(Debug)]
pub struct Created {
    pub id: String,
    pub answer: String,
}

struct Entry {
    tx: mpsc::Sender<(SocketAddr, BytesMut)>,
    close: Arc<Notify>,
    info: Arc<Mutex<SessionInfo>>,
}

struct Inner {
    socket: Arc<UdpSocket>,
    candidates: Vec<SocketAddr>,
    config: WebRtcConfig,
    bus: Bus,
    mux: Mutex<UdpMux<u64>>,
    sessions: Mutex<HashMap<u64, Entry>>,
    ids: Mutex<HashMap<String, u64>>,
    /// WHIP publishers by Bus path: viewers' keyframe requests go here.
    keyframe_by_path: Mutex<HashMap<StreamPath, Arc<Notify>>>,
    next: AtomicU64,
    stats: Arc<WebRtcStats>,
    derived: DerivedFeeds,
}

/// The WebRTC service: signalling calls in, sessions on the media socket. Cheap to clone.
#[derive(Clone)]
pub struct WebRtc {
    inner: Arc<Inner>,
}

const QUEUE: usize = 512;
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// A connected peer that sent nothing (no STUN consent check, no RTCP report, no media) for
/// this long is gone: browsers send consent checks every ~5 s and receiver reports every
/// second, and one that crashed or lost its network says nothing. ICE's own consent expiry
/// (30 s) would keep the session, and its viewer counted, three times longer.
const PEER_SILENCE: Duration = Duration::from_secs(12);

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("OS randomness");
    u64::from_le_bytes(b)
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut b = vec![0u8; len];
    getrandom::fill(&mut b).expect("OS randomness");
    b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect()
}

/// The addresses to advertise when none are configured.
fn default_ips(listen: IpAddr) -> Vec<IpAddr> {
    if !listen.is_unspecified() {
        return vec![listen];
    }
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    // The address of the default route (connecting a UDP socket sends nothing).
    if let Ok(s) = std::net::UdpSocket::bind("0.0.0.0:0") {
        if s.connect("192.0.2.1:9").is_ok() {
            if let Ok(a) = s.local_addr() {
                if !a.ip().is_unspecified() && !a.ip().is_loopback() {
                    ips.push(a.ip());
                }
            }
        }
    }
    ips
}

impl WebRtc {
    /// Binds the media socket and starts its receive loop.
    pub async fn bind(config: WebRtcConfig, bus: Bus, derived: DerivedFeeds) -> Result<WebRtc, WebRtcError> {
        let socket = UdpSocket::bind(config.udp_listen)
            .await
            .map_err(|source| WebRtcError::Bind { addr: config.udp_listen, source })?;
        let port = socket.local_addr().map_err(|source| WebRtcError::Bind { addr: config.udp_listen, source })?.port();
        let ips =
            if config.public_ips.is_empty() { default_ips(config.udp_listen.ip()) } else { config.public_ips.clone() };
        let candidates = ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect();
        let inner = Arc::new(Inner {
            socket: Arc::new(socket),
            candidates,
            config,
            bus,
            mux: Mutex::new(UdpMux::default()),
            sessions: Mutex::new(HashMap::new()),
            ids: Mutex::new(HashMap::new()),
            keyframe_by_path: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            stats: Arc::new(WebRtcStats::default()),
            derived,
        });
        tokio::spawn(receive_loop(Arc::downgrade(&inner), inner.socket.clone()));
        Ok(WebRtc { inner })
    }

    /// The bound media address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.socket.local_addr()
    }

    /// The host candidates advertised in answers.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.inner.candidates
    }

    pub fn stats(&self) -> &Arc<WebRtcStats> {
        &self.inner.stats
    }

    /// Live sessions, for the API.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let sessions = lock(&self.inner.sessions);
        sessions.values().map(|e| lock(&e.info).clone()).collect()
    }

    /// Ends a session by its resource id (`DELETE`). False when unknown.
    pub fn delete(&self, id: &str) -> bool {
        let Some(n) = lock(&self.inner.ids).get(id).copied() else { return false };
        match lock(&self.inner.sessions).get(&n) {
            Some(e) => {
                e.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn params(&self) -> SessionParams {
        SessionParams {
            ufrag: random_token(8),
            pwd: random_token(24),
            candidates: self.inner.candidates.clone(),
            stun_servers: self.inner.config.stun_servers.clone(),
            random: random_u64() as u32,
        }
    }

    fn check_limit(&self) -> Result<(), WebRtcError> {
        let n = lock(&self.inner.sessions).len();
        if n >= self.inner.config.max_sessions {
            return Err(WebRtcError::TooManySessions(self.inner.config.max_sessions));
        }
        Ok(())
    }

    fn register(
        &self,
        role: Role,
        path: &StreamPath,
        peer: &str,
        ufrag: &str,
        audio: &'static str,
        video: (&'static str, Option<String>),
    ) -> (u64, String, Entry, mpsc::Receiver<(SocketAddr, BytesMut)>) {
        let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:016x}", random_u64());
        let (tx, rx) = mpsc::channel(QUEUE);
        let info = SessionInfo {
            id: id.clone(),
            role,
            path: path.clone(),
            peer: peer.to_owned(),
            connected: false,
            started: Instant::now(),
            rtt_ms: None,
            packets_lost: 0,
            nacks_received: 0,
            plis_received: 0,
            plis_sent: 0,
            audio,
            video: video.0,
            video_reason: video.1,
        };
        let entry = Entry { tx, close: Arc::new(Notify::new()), info: Arc::new(Mutex::new(info)) };
        let task_entry = Entry { tx: entry.tx.clone(), close: entry.close.clone(), info: entry.info.clone() };
        lock(&self.inner.sessions).insert(n, entry);
        lock(&self.inner.ids).insert(id.clone(), n);
        lock(&self.inner.mux).add(ufrag.to_owned(), n);
        let gauge = match role {
            Role::Whip => &self.inner.stats.whip_sessions,
            Role::Whep => &self.inner.stats.whep_sessions,
        };
        gauge.fetch_add(1, Ordering::Relaxed);
        self.inner.stats.sessions_started.fetch_add(1, Ordering::Relaxed);
        (n, id, task_entry, rx)
    }

    /// `POST /whip/<name>`: a publisher's offer for Bus path `path` (auth is the caller's).
    pub fn whip(&self, path: &StreamPath, offer_sdp: &str, peer: &str) -> Result<Created, WebRtcError> {
        let offer = Offer::parse(offer_sdp.as_bytes())?;
        self.check_limit()?;
        let params = self.params();
        let (session, answer) = Session::whip(offer_sdp, &offer, &params, Instant::now())?;
        let publisher = match self.inner.bus.publish(path, PublisherInfo { protocol: "webrtc", peer: peer.to_owned() })
        {
            Ok(p) => p,
            Err(BusError::AlreadyPublishing(_)) => return Err(WebRtcError::AlreadyLive(path.to_string())),
            Err(e) => return Err(WebRtcError::Rtc(e.to_string())),
        };
        let keyframe = Arc::new(Notify::new());
        lock(&self.inner.keyframe_by_path).insert(path.clone(), keyframe.clone());
        let (n, id, entry, rx) = self.register(Role::Whip, path, peer, &params.ufrag, "opus", ("source", None));
        let span = tracing::info_span!("webrtc", role = "whip", id = %id, stream = %path, %peer);
        span.in_scope(|| tracing::info!("publisher offered; answering"));
        let media = Media::Whip { publisher, keyframe };
        tokio::spawn(run(self.inner.clone(), n, session, rx, entry, media).instrument(span));
        Ok(Created { id, answer })
    }

    /// `POST /whep/<name>`: a viewer's offer for Bus path `path`.
    pub async fn whep(&self, path: &StreamPath, offer_sdp: &str, peer: &str) -> Result<Created, WebRtcError> {
        let offer = Offer::parse(offer_sdp.as_bytes())?;
        self.check_limit()?;
        let bus = &self.inner.bus;
        let not_live = || WebRtcError::NotLive(path.to_string());
        if !bus.contains(path) {
            bus.request(path, Duration::from_secs(10)).await;
        }
        let mut sub = bus.subscribe(path, "webrtc").map_err(|_| not_live())?;
        // The tracks are known once the publisher announced them.
        let tracks = match tokio::time::timeout(Duration::from_secs(5), sub.announced_tracks()).await {
            Ok(Some(tracks)) => tracks,
            Ok(None) => return Err(not_live()),
            Err(_) => bus.stream_snapshot(path).ok_or_else(not_live)?.tracks,
        };
        let derivable =
            |f: &Option<FeedFn>, feed: Feed| path.is_source() && (f.is_some() || bus.contains(&path.with_feed(feed)));
        let derived = WhepDerived {
            opus_feed: derivable(&self.inner.derived.opus, Feed::Opus),
            rendition: derivable(&self.inner.derived.rendition, Feed::WebRtc),
        };
        let params = self.params();
        let (session, answer, plan) = Session::whep(offer_sdp, &offer, &tracks, derived, &params, Instant::now())?;
        let audio = match plan.audio {
            AudioSource::Source => "opus",
            AudioSource::OpusFeed => "opus (transcoded)",
            AudioSource::None => "none",
        };
        let video = match plan.video {
            Some(VideoOrigin::Source) => "source",
            Some(VideoOrigin::Rendition) => "webrtc rendition",
            None => "none",
        };
        let (n, id, entry, rx) =
            self.register(Role::Whep, path, peer, &params.ufrag, audio, (video, plan.video_reason.clone()));
        let span = tracing::info_span!("webrtc", role = "whep", id = %id, stream = %path, %peer);
        span.in_scope(|| {
            tracing::info!(
                audio,
                video,
                reason = plan.video_reason.as_deref().unwrap_or(""),
                "viewer offered; answering"
            )
        });
        let opus =
            (plan.audio == AudioSource::OpusFeed).then(|| Derived::new(path.with_feed(Feed::Opus), Origin::OpusFeed));
        let rendition = (plan.video == Some(VideoOrigin::Rendition))
            .then(|| Derived::new(path.with_feed(Feed::WebRtc), Origin::Rendition));
        let media = Media::Whep { sub, opus, rendition };
        tokio::spawn(run(self.inner.clone(), n, session, rx, entry, media).instrument(span));
        Ok(Created { id, answer })
    }
}

#[allow(clippy::large_enum_variant)] // one per session, moved once into its task
enum Media {
    Whip { publisher: Publisher, keyframe: Arc<Notify> },
    Whep { sub: Subscriber, opus: Option<Derived>, rendition: Option<Derived> },
}

/// A WHEP viewer's derived feed (Opus audio, WebRTC rendition): its path, the transcoder's
/// guard that keeps it made, and the subscription once it is on the Bus.
struct Derived {
    path: StreamPath,
    origin: Origin,
    sub: Option<Subscriber>,
    guard: Option<Box<dyn std::any::Any + Send>>,
}

impl Derived {
    fn new(path: StreamPath, origin: Origin) -> Derived {
        Derived { path, origin, sub: None, guard: None }
    }
}

/// What happened to a derived feed.
enum DerivedEvent {
    /// It is on the Bus (and not subscribed yet).
    Live,
    Delivery(Result<Delivery, BusError>),
}

/// The next event of a derived feed: its subscription's next delivery, or, before there is
/// one, its appearing on the Bus. Never without a feed.
async fn derived_next(bus: &Bus, derived: &mut Option<Derived>) -> DerivedEvent {
    match derived {
        Some(d) => match &mut d.sub {
            Some(s) => DerivedEvent::Delivery(s.recv().await),
            None => {
                bus.live(&d.path).await;
                DerivedEvent::Live
            }
        },
        None => std::future::pending().await,
    }
}

/// Subscribes a derived feed that appeared; hands its frames and tracks to the session; at its
/// end drops the subscription (taken again if the feed comes back).
fn on_derived(bus: &Bus, session: &mut Session, derived: &mut Option<Derived>, event: DerivedEvent) {
    let Some(d) = derived else { return };
    match event {
        DerivedEvent::Live => {
            if let Ok(s) = bus.subscribe_service(&d.path) {
                match d.origin {
                    Origin::Rendition => tracing::info!(feed = %d.path, "video from the WebRTC rendition"),
                    _ => tracing::info!(feed = %d.path, "audio from the Opus feed"),
                }
                d.sub = Some(s);
            }
        }
        DerivedEvent::Delivery(Ok(Delivery::Frames(frames))) => session.send_frames(Instant::now(), &frames, d.origin),
        DerivedEvent::Delivery(Ok(Delivery::Tracks(t))) => session.set_tracks(&t, d.origin),
        DerivedEvent::Delivery(Ok(Delivery::Ended) | Err(_)) => d.sub = None,
    }
}

async fn receive_loop(inner: std::sync::Weak<Inner>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors (port unreachable) surface here on Linux; keep going.
                tracing::debug!(error = %e, "media socket receive error");
                continue;
            }
        };
        let Some(inner) = inner.upgrade() else { return };
        inner.stats.datagrams_in.fetch_add(1, Ordering::Relaxed);
        inner.stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        let route = lock(&inner.mux).route(&buf[..n], from);
        let Route::Session(id) = route else {
            tracing::debug!(%from, len = n, ?route, "unroutable datagram");
            inner.stats.datagrams_unroutable.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let tx = lock(&inner.sessions).get(&id).map(|e| e.tx.clone());
        match tx {
            Some(tx) => {
                if tx.try_send((from, BytesMut::from(&buf[..n]))).is_err() {
                    inner.stats.datagrams_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                inner.stats.datagrams_unroutable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

async fn recv_opt(sub: &mut Option<Subscriber>) -> Result<Delivery, BusError> {
    match sub {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

async fn run(
    inner: Arc<Inner>,
    n: u64,
    mut session: Session,
    mut rx: mpsc::Receiver<(SocketAddr, BytesMut)>,
    entry: Entry,
    media: Media,
) {
    let role = session.role();
    let started = Instant::now();
    let deadline = started + inner.config.session_timeout;
    let mut last_keyframe_request: Option<Instant> = None;
    let mut reported = crate::session::SessionCounters::default();
    let mut reported_dropped = 0u64;
    let mut end_reason = "closed by peer";
    let mut last_heard = started;
    let (publisher, keyframe, mut sub, mut opus, mut rendition) = match media {
        Media::Whip { publisher, keyframe } => (Some(publisher), Some(keyframe), None, None, None),
        Media::Whep { sub, opus, rendition } => (None, None, Some(sub), opus, rendition),
    };
    let path = lock(&entry.info).path.clone();
    for (derived, acquire) in [(&mut opus, &inner.derived.opus), (&mut rendition, &inner.derived.rendition)] {
        if let (Some(d), Some(acquire)) = (derived, acquire) {
            // Starting a transcode loads GStreamer (hundreds of ms the first time): after the
            // answer went out, and off the runtime's worker.
            d.guard = tokio::task::block_in_place(|| acquire(&inner.bus, &path));
        }
    }
    'run: loop {
        // Send what the core produced.
        while let Some((to, data)) = session.poll_transmit() {
            inner.stats.datagrams_out.fetch_add(1, Ordering::Relaxed);
            inner.stats.bytes_out.fetch_add(data.len() as u64, Ordering::Relaxed);
            if let Err(e) = inner.socket.send_to(&data, to).await {
                tracing::debug!(error = %e, %to, "send failed");
            }
        }
        for output in session.take_outputs() {
            match output {
                Output::Connected => {
                    tracing::info!(after_ms = started.elapsed().as_millis() as u64, "connected");
                    lock(&entry.info).connected = true;
                }
                Output::Closed => {
                    end_reason = "peer connection closed or failed";
                    break 'run;
                }
                Output::Ingest(action) => {
                    let Some(publisher) = &publisher else { continue };
                    match action {
                        IngestAction::SetTracks(t) => {
                            tracing::info!(video = ?t.video.as_ref().map(|c| c.name()), audio = ?t.audio.as_ref().map(|c| c.name()), "tracks");
                            publisher.set_tracks(t);
                        }
                        IngestAction::Frame(f) => publisher.push(f),
                        IngestAction::RequestKeyframe => {
                            if last_keyframe_request.is_none_or(|t| t.elapsed() >= KEYFRAME_REQUEST_INTERVAL) {
                                last_keyframe_request = Some(Instant::now());
                                session.request_keyframe(Instant::now());
                            }
                        }
                    }
                }
                Output::KeyframeRequested => {
                    let notify = lock(&inner.keyframe_by_path).get(&path).cloned();
                    if let Some(notify) = notify {
                        notify.notify_one();
                    }
                }
            }
        }
        // Counters → metrics (deltas) and the API.
        let c = session.counters;
        let s = &inner.stats;
        s.nacks_received.fetch_add(c.nacks_received - reported.nacks_received, Ordering::Relaxed);
        s.plis_received.fetch_add(c.plis_received - reported.plis_received, Ordering::Relaxed);
        s.plis_sent.fetch_add(c.plis_sent - reported.plis_sent, Ordering::Relaxed);
        if c.packets_lost_reported > reported.packets_lost_reported {
            s.packets_lost.fetch_add(c.packets_lost_reported - reported.packets_lost_reported, Ordering::Relaxed);
        }
        let dropped = session.ingest_dropped();
        s.ingest_frames_dropped.fetch_add(dropped - reported_dropped, Ordering::Relaxed);
        reported_dropped = dropped;
        if c.nacks_received != reported.nacks_received
            || c.plis_received != reported.plis_received
            || c.rtt_ms != reported.rtt_ms
            || c.packets_lost_reported != reported.packets_lost_reported
            || c.plis_sent != reported.plis_sent
        {
            let mut info = lock(&entry.info);
            info.rtt_ms = c.rtt_ms;
            info.packets_lost = c.packets_lost_reported;
            info.nacks_received = c.nacks_received;
            info.plis_received = c.plis_received;
            info.plis_sent = c.plis_sent;
        }
        reported = c;
        if session.is_closed() {
            break;
        }
        let now = Instant::now();
        if !session.is_connected() && now >= deadline {
            inner.stats.sessions_timed_out.fetch_add(1, Ordering::Relaxed);
            end_reason = "ICE/DTLS did not complete in time";
            break;
        }
        if session.is_connected() && now >= last_heard + PEER_SILENCE {
            inner.stats.sessions_timed_out.fetch_add(1, Ordering::Relaxed);
            end_reason = "the peer went silent";
            break;
        }
        let mut wake = session.poll_timeout().unwrap_or(now + Duration::from_secs(1)).min(now + Duration::from_secs(1));
        if !session.is_connected() {
            wake = wake.min(deadline);
        }
        let connected = session.is_connected();
        tokio::select! {
            biased;
            _ = entry.close.notified() => {
                end_reason = "deleted";
                break;
            }
            d = rx.recv() => match d {
                Some((from, data)) => {
                    last_heard = Instant::now();
                    session.handle_datagram(last_heard, from, data)
                }
                None => break,
            },
            _ = tokio::time::sleep_until(wake.into()) => session.handle_timeout(Instant::now()),
            r = recv_opt(&mut sub), if connected && sub.is_some() => {
                match r {
                    Ok(Delivery::Tracks(t)) => session.set_tracks(&t, Origin::Source),
                    Ok(Delivery::Frames(frames)) => session.send_frames(Instant::now(), &frames, Origin::Source),
                    Ok(Delivery::Ended) => { end_reason = "stream ended"; break; }
                    Err(e) => { tracing::info!(error = %e, "viewer dropped by the Bus"); end_reason = "too slow"; break; }
                }
            }
            e = derived_next(&inner.bus, &mut opus), if connected => on_derived(&inner.bus, &mut session, &mut opus, e),
            e = derived_next(&inner.bus, &mut rendition), if connected => {
                on_derived(&inner.bus, &mut session, &mut rendition, e)
            }
            _ = notified_opt(&keyframe), if keyframe.is_some() => {
                if last_keyframe_request.is_none_or(|t| t.elapsed() >= KEYFRAME_REQUEST_INTERVAL) {
                    last_keyframe_request = Some(Instant::now());
                    session.request_keyframe(Instant::now());
                }
            }
            _ = kicked_opt(&publisher), if publisher.is_some() => {
                end_reason = "kicked";
                break;
            }
        }
    }
    session.close();
    while let Some((to, data)) = session.poll_transmit() {
        let _ = inner.socket.send_to(&data, to).await;
    }
    lock(&inner.mux).remove(&n);
    lock(&inner.sessions).remove(&n);
    let id = lock(&entry.info).id.clone();
    lock(&inner.ids).remove(&id);
    if publisher.is_some() {
        let mut by_path = lock(&inner.keyframe_by_path);
        if by_path.get(&path).zip(keyframe.as_ref()).is_some_and(|(a, b)| Arc::ptr_eq(a, b)) {
            by_path.remove(&path);
        }
    }
    let gauge = match role {
        Role::Whip => &inner.stats.whip_sessions,
        Role::Whep => &inner.stats.whep_sessions,
    };
    gauge.fetch_sub(1, Ordering::Relaxed);
    let egress = session.egress().map(|e| e.counters);
    tracing::info!(reason = end_reason, lived_s = started.elapsed().as_secs(), ?egress, "session ended");
}

async fn notified_opt(n: &Option<Arc<Notify>>) {
    match n {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

async fn kicked_opt(p: &Option<Publisher>) {
    match p {
        Some(p) => p.kicked().await,
        None => std::future::pending().await,
    }
}
