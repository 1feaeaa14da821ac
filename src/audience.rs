//! Analytics wiring: the analytics service on the catalog database, the visitor hash's
//! secret, the country lookup, the collector's rate limit, and what the HTTP surfaces and
//! the RTMP/SRT players need from it: a request's [`Viewer`], the [`Content`] a stream or a
//! video is, and connection sessions (WHEP sessions are followed from the WebRTC driver).

use crate::config::Config;
use anyhow::{Context, Result};
use rill_analytics::client::{self, Geo, GeoDb, VisitorHasher};
use rill_analytics::score::ScoreWeights;
use rill_analytics::service::{Analytics, ConnectionSession, ServiceConfig};
use rill_analytics::session::{Content, Protocol, Report, Viewer};
use rill_analytics::store::Store;
use rill_media::ratelimit::PerClient;
use rill_media::sync::lock;
use rill_vod::library::Library;
use rill_vod::recorder::Recorder;
use rill_vod::VideoId;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The cookie that names an anonymous viewer (set by the viewer site).
pub const VISITOR_COOKIE: &str = "rill_viewer";
/// The cookie in which Rill's pages keep the host of the site that sent the viewer (the
/// `Referer` of media requests is the page itself).
pub const REFERRER_COOKIE: &str = "rill_ref";
/// How often WHEP sessions are reconciled with the WebRTC driver.
const WHEP_POLL: Duration = Duration::from_secs(2);

/// Analytics as the rest of the binary sees it.
pub struct Audience {
    pub service: Arc<Analytics>,
    pub enabled: bool,
    /// Carry a session parameter into playlists for players that name no session.
    pub session_param: bool,
    /// The collector's body limit.
    pub max_body: usize,
    hasher: VisitorHasher,
    geo: Geo,
    limiter: PerClient<IpAddr>,
    /// New sessions per client address.
    new_sessions: PerClient<IpAddr>,
    library: Arc<Library>,
    recorder: Arc<Recorder>,
    /// Open WHEP sessions by WebRTC session id.
    whep: Mutex<HashMap<String, ConnectionSession>>,
}

impl Audience {
    /// Opens the analytics tables and starts the writer.
    pub async fn start(config: &Config, library: Arc<Library>, recorder: Arc<Recorder>) -> Result<Arc<Audience>> {
        let a = &config.analytics;
        let catalog = &library.catalog;
        let store =
            Store::open(catalog.pool().clone(), catalog.dialect()).await.context("opening the analytics tables")?;
        let node = if a.node.is_empty() { host_name() } else { a.node.clone() };
        let service = Analytics::new(
            store,
            ServiceConfig {
                raw_retention_days: a.raw_retention_days,
                max_sessions: a.max_sessions,
                max_queue: a.max_queue,
                node,
                weights: ScoreWeights {
                    startup: a.weight_startup,
                    smoothness: a.weight_smoothness,
                    success: a.weight_success,
                },
                ..ServiceConfig::default()
            },
        );
        let geo = match a.geoip_mmdb.as_str() {
            "" => Geo::new(None),
            path => Geo::new(Some(GeoDb::open(path).with_context(|| format!("opening analytics.geoip_mmdb {path}"))?)),
        };
        let audience = Arc::new(Audience {
            service: service.clone(),
            enabled: a.enabled,
            session_param: a.session_param,
            max_body: a.max_body_kb << 10,
            hasher: VisitorHasher::new(visitor_secret(config)?),
            geo,
            limiter: PerClient::new(a.client_rate, a.client_burst),
            new_sessions: PerClient::new(a.client_sessions_per_min / 60.0, a.client_sessions_per_min),
            library,
            recorder,
            whep: Mutex::new(HashMap::new()),
        });
        if a.enabled {
            tokio::spawn(service.run());
        }
        Ok(audience)
    }

    /// The viewer behind a request: the visitor cookie or a daily-salted hash of address and
    /// user agent, the country of the address, the device of the user agent, and the host of
    /// a referrer on another site.
    pub fn viewer(
        &self,
        ip: IpAddr,
        user_agent: &str,
        referrer: Option<&str>,
        visitor_cookie: Option<&str>,
        own_host: Option<&str>,
    ) -> Viewer {
        let day = (SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) / 86_400) as u32;
        let visitor = match visitor_cookie.filter(|c| is_token(c)) {
            Some(cookie) => format!("c:{cookie}"),
            None => format!("h:{:016x}", self.hasher.visitor(day, ip, user_agent)),
        };
        let device = client::device(user_agent);
        let referrer = referrer
            .and_then(|r| {
                if r.contains('/') {
                    client::referrer_host(r)
                } else {
                    client::referrer_host(&format!("https://{r}/"))
                }
            })
            .filter(|host| own_host.is_none_or(|own| !host.eq_ignore_ascii_case(own.split(':').next().unwrap_or(own))));
        Viewer {
            visitor,
            country: self.geo.country(ip).map(|c| c.as_str().to_owned()),
            device: device.kind.as_str().to_owned(),
            browser: device.browser.to_owned(),
            os: device.os.to_owned(),
            referrer,
        }
    }

    /// A live stream, and the video its recording makes.
    pub fn live_content(&self, stream: &str) -> Content {
        let recording = self.recorder.recording(stream).filter(|r| !r.failed()).map(|r| r.video_id.to_string());
        Content::live(stream, recording)
    }

    /// A video of the catalog (`None` if there is no such video).
    pub async fn video_content(&self, id: &str) -> Option<Content> {
        let index = self.library.index(VideoId::parse(id)?).await.ok()??;
        Some(Content::video(id, index.video.duration_ms.max(0) as u64))
    }

    /// Where video segment `sequence` of video `id` lies in its media time (ms).
    pub async fn video_segment_range(&self, id: &str, sequence: i64) -> Option<(u64, u64)> {
        let index = self.library.index(VideoId::parse(id)?).await.ok()??;
        index.track(rill_media::cmaf::TrackKind::Video)?.media_range_ms(sequence)
    }

    /// Whether the collector takes another request from `ip` now.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let allowed = self.limiter.allow(ip, Instant::now());
        if !allowed {
            self.service.rate_limited();
        }
        allowed
    }

    /// Whether a report for session `id` from `ip` may be taken: a session already tracked
    /// always; a new one within the address's budget of new sessions (refusals are counted).
    pub fn admit(&self, id: &str, ip: IpAddr) -> bool {
        if self.service.is_tracked(id) || self.new_sessions.allow(ip, Instant::now()) {
            return true;
        }
        self.service.refused_session();
        false
    }

    /// The session of a player connection (HTTP-FLV, RTMP, SRT) to live stream `name`.
    pub fn connect(
        &self,
        protocol: Protocol,
        name: &str,
        peer: SocketAddr,
        user_agent: &str,
        referrer: Option<&str>,
    ) -> Option<ConnectionSession> {
        if !self.enabled {
            return None;
        }
        let viewer = self.viewer(peer.ip(), user_agent, referrer, None, None);
        self.service.connect(None, protocol, self.live_content(name), viewer)
    }

    /// A WHEP session was created: it is a viewer until the WebRTC driver drops it.
    pub fn whep_started(&self, session_id: &str, name: &str, viewer: Viewer) {
        if !self.enabled {
            return;
        }
        let id = format!("whep-{session_id}");
        if let Some(session) = self.service.connect(Some(id), Protocol::Webrtc, self.live_content(name), viewer) {
            lock(&self.whep).insert(session_id.to_owned(), session);
        }
    }

    /// Follows WHEP sessions: their round-trip time and losses while they last, and their
    /// end when the driver drops them.
    pub fn follow_whep(self: &Arc<Self>, webrtc: rill_webrtc::WebRtc) {
        let audience = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(WHEP_POLL).await;
                let sessions: HashMap<String, rill_webrtc::SessionInfo> =
                    webrtc.sessions().into_iter().map(|s| (s.id.clone(), s)).collect();
                let mut whep = lock(&audience.whep);
                whep.retain(|id, _| sessions.contains_key(id));
                for (id, session) in whep.iter() {
                    let info = &sessions[id];
                    let report = Report {
                        at_ms: rill_analytics::service::now_ms(),
                        rtt_ms: info.rtt_ms.map(|ms| ms.round() as u64),
                        lost_packets: Some(info.packets_lost),
                        ..Report::default()
                    };
                    audience.service.update_connection(session.id(), &report);
                }
            }
        });
    }
}

/// A cookie value safe to keep as an id.
fn is_token(value: &str) -> bool {
    (8..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rill".into())
}

/// The visitor hash's secret: configured, or made once and kept in `data/analytics_secret`.
fn visitor_secret(config: &Config) -> Result<[u8; 32]> {
    let hex = if config.analytics.visitor_secret.is_empty() {
        let path = config.server.data_dir.join("analytics_secret");
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes)
                    .map_err(|e| anyhow::anyhow!("no randomness for the visitor secret: {e}"))?;
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                rill_media::persist::write_private(&path, hex.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
                hex
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    } else {
        config.analytics.visitor_secret.clone()
    };
    let mut secret = [0u8; 32];
    if hex.len() != 64 {
        anyhow::bail!("the visitor secret must be 64 hex digits");
    }
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).context("the visitor secret is not hex")?;
    }
    Ok(secret)
}
