//! Configuration: `conf/rill.toml` (embedded as the default), overridden per key by
//! `RILL_<SECTION>_<KEY>` environment variables. Errors name the offending key.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The documented defaults, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../conf/rill.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub http: HttpConfig,
    pub rtmp: RtmpConfig,
    pub rtmps: RtmpsConfig,
    pub bus: BusSection,
    pub packager: PackagerSection,
    pub auth: AuthConfig,
    pub access: AccessSection,
    pub record: RecordSection,
    pub database: DatabaseSection,
    #[serde(default)]
    pub streams: Vec<StreamConfig>,
    pub rtsp: RtspSection,
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    pub srt: SrtSection,
    pub transcode: TranscodeSection,
    pub thumbnails: ThumbnailsSection,
    pub webrtc: WebRtcSection,
    pub vod: VodSection,
    pub analytics: AnalyticsSection,
}

/// `[analytics]`: viewer sessions, CMCD, QoE (README "Analytics").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsSection {
    pub enabled: bool,
    pub raw_retention_days: u64,
    pub max_sessions: usize,
    pub max_queue: usize,
    pub max_body_kb: usize,
    pub client_rate: f64,
    pub client_burst: f64,
    /// New viewer sessions one client address may open per minute (bursts of as many).
    pub client_sessions_per_min: f64,
    pub session_param: bool,
    pub node: String,
    pub geoip_mmdb: String,
    pub visitor_secret: String,
    pub weight_startup: f64,
    pub weight_smoothness: f64,
    pub weight_success: f64,
}

/// `[webrtc]`: WHIP ingest and WHEP playback (media on one UDP port).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebRtcSection {
    pub udp_listen: SocketAddr,
    /// Addresses advertised as ICE host candidates; empty: 127.0.0.1 and the host's IPv4
    /// address on its default route.
    pub public_ips: Vec<std::net::IpAddr>,
    /// `stun:host:port` URLs (unused by an ICE-lite server with host candidates; kept for NAT setups).
    pub stun_servers: Vec<String>,
    /// A session whose ICE/DTLS has not completed by then is reclaimed.
    pub session_timeout_s: u64,
    pub max_sessions: usize,
    /// A WHEP viewer whose offer cannot decode the source's video gets a Constrained Baseline
    /// H.264 rendition made on demand (`live/<name>/webrtc`); false: a 406 saying why.
    pub transcode: bool,
    /// The rendition's video bitrate.
    pub transcode_kbps: u32,
}

/// `[transcode]`: the live ABR ladder.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TranscodeSection {
    pub enabled: bool,
    /// GStreamer H.264 encoder element: `x264enc`, or `nvh264enc`/`vaapih264enc`/`qsvh264enc`.
    pub encoder: String,
    /// x264's `speed-preset` (ultrafast … veryslow).
    pub speed_preset: String,
    /// A rung later than this behind real time for a sustained while is dropped (overload).
    pub max_lateness_ms: u64,
    pub ladder: Vec<RungConfig>,
}

/// A `[[transcode.ladder]]` rung.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RungConfig {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
}

/// `[thumbnails]`: live stream snapshots at `/live/<name>/thumbnail.jpg`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailsSection {
    pub enabled: bool,
    pub interval_s: u64,
    pub width: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SrtSection {
    pub listen: SocketAddr,
    pub latency_ms: u64,
    pub idle_timeout_s: u64,
    pub playback: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub log: String,
    pub public_host: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub write_timeout_s: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RtmpConfig {
    pub listen: SocketAddr,
    pub max_chunk_size: u32,
    pub max_message_size: u32,
    pub max_name_len: usize,
    pub handshake_timeout_s: u64,
    pub idle_timeout_s: u64,
    pub write_timeout_s: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RtmpsConfig {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key; RTMPS is off while either is empty.
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl RtmpsConfig {
    pub fn enabled(&self) -> bool {
        !self.cert.as_os_str().is_empty() && !self.key.as_os_str().is_empty()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BusSection {
    pub reconnect_grace_s: u64,
    pub max_cache_frames: usize,
    pub max_cache_mb: usize,
    pub slow_viewer_timeout_s: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PackagerSection {
    pub segment_s: f64,
    pub part_ms: u64,
    pub window_segments: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RecordSection {
    pub enabled: bool,
    pub path: PathBuf,
    pub visibility: rill_vod::catalog::Visibility,
    pub max_age_days: f64,
    pub max_total_gb: f64,
    pub sweep_interval_s: u64,
}

impl RecordSection {
    /// Where recordings are written: `path`, or `<data_dir>/recordings`.
    pub fn dir(&self, server: &ServerConfig) -> PathBuf {
        if self.path.as_os_str().is_empty() {
            server.data_dir.join("recordings")
        } else {
            self.path.clone()
        }
    }
}

/// `[vod]`: uploaded videos (tus uploads at `/api/v1/uploads`) and their processing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VodSection {
    /// Largest upload accepted (`Upload-Length`), in GB (10^9 bytes).
    pub max_upload_gb: f64,
    /// Where uploads in progress are kept. Empty: `<data_dir>/uploads`.
    pub upload_path: PathBuf,
    /// An upload that receives nothing for this long expires and is removed (hours).
    pub upload_expiry_h: f64,
    /// Uploads processed at once.
    pub processing_jobs: usize,
}

impl VodSection {
    /// Where uploads in progress are kept: `upload_path`, or `<data_dir>/uploads`.
    pub fn upload_dir(&self, server: &ServerConfig) -> PathBuf {
        if self.upload_path.as_os_str().is_empty() {
            server.data_dir.join("uploads")
        } else {
            self.upload_path.clone()
        }
    }

    /// `max_upload_gb` in bytes.
    pub fn max_upload_bytes(&self) -> u64 {
        (self.max_upload_gb * 1e9) as u64
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    pub url: String,
}

impl DatabaseSection {
    /// The catalog's URL: `url`, or an SQLite file `<data_dir>/rill.db`.
    pub fn url(&self, server: &ServerConfig) -> String {
        if self.url.is_empty() {
            format!("sqlite://{}", server.data_dir.join("rill.db").display())
        } else {
            self.url.clone()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Keys,
    Open,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub admin_token: String,
}

/// `[access]`: tokens and who may watch (README "Access control").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// The tokens' signing secret; empty: generated into `<data_dir>/access_secret`.
    pub secret: String,
    /// Streams without a setting of their own.
    pub playback: rill_media::access::Playback,
    pub session_idle_s: u64,
    pub session_max_s: u64,
    pub max_ttl_s: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub name: String,
    pub key: String,
    /// Overrides `[record] enabled` for this stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
    /// SRT encryption passphrase (10..=79 characters): required to publish or read over SRT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srt_passphrase: Option<String>,
    /// Overrides `[transcode] enabled` for this stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcode: Option<bool>,
    /// The rungs of `[[transcode.ladder]]` (by name) this stream gets; all by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<Vec<String>>,
    /// Overrides `[access] playback` for this stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback: Option<rill_media::access::Playback>,
}

impl Config {
    /// Loads `path` (or `conf/rill.toml` if present, else the embedded defaults), fills keys
    /// the file leaves out from the defaults, then applies `RILL_*` overrides from `env`.
    pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
        let (source, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).with_context(|| format!("reading config {}", p.display()))?,
            ),
            None if Path::new("conf/rill.toml").exists() => {
                ("conf/rill.toml".into(), std::fs::read_to_string("conf/rill.toml").context("reading conf/rill.toml")?)
            }
            None => ("(embedded defaults)".into(), DEFAULT_TOML.to_string()),
        };
        let mut table: toml::Table = text.parse().with_context(|| format!("config {source} is not valid TOML"))?;
        let defaults: toml::Table = DEFAULT_TOML.parse().expect("embedded defaults parse");
        for (section, values) in &defaults {
            let (Some(default_values), entry) = (
                values.as_table(),
                table.entry(section.clone()).or_insert_with(|| toml::Value::Table(Default::default())),
            ) else {
                continue;
            };
            let target = entry.as_table_mut().ok_or_else(|| anyhow!("config {source}: [{section}] must be a table"))?;
            for (key, value) in default_values {
                target.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        let mut overridden = Vec::new();
        for (var, value) in env {
            if let Some(key) = apply_env_override(&mut table, &defaults, &var, &value)? {
                overridden.push((key, var));
            }
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().message().trim().to_string();
            match overridden.iter().find(|(k, _)| *k == key) {
                Some((_, var)) => anyhow!("environment variable {var} (config key {key}): {message}"),
                None => anyhow!("config {source}: key {key}: {message}"),
            }
        })?;
        config.validate().with_context(|| format!("config {source}"))?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        for s in &self.streams {
            if !rill_media::path::is_valid_stream_name(&s.name) {
                bail!("streams: name {:?} is invalid (allowed: [A-Za-z0-9_-]{{1,64}})", s.name);
            }
            if s.key.len() < 8 || s.key.len() > self.rtmp.max_name_len || s.key.contains(['/', '?', ' ']) {
                bail!(
                    "streams: key of stream {:?} must be 8..={} characters without '/', '?' or spaces",
                    s.name,
                    self.rtmp.max_name_len
                );
            }
        }
        for s in &self.streams {
            if s.srt_passphrase.as_ref().is_some_and(|p| !(10..=79).contains(&p.len())) {
                bail!("streams: srt_passphrase of stream {:?} must be 10..=79 characters (SRT's limits)", s.name);
            }
        }
        if self.webrtc.session_timeout_s == 0 || self.webrtc.max_sessions == 0 {
            bail!("webrtc.session_timeout_s and webrtc.max_sessions must be at least 1");
        }
        let a = &self.analytics;
        if a.max_sessions == 0 || a.max_queue == 0 || a.max_body_kb == 0 {
            bail!("analytics.max_sessions, max_queue and max_body_kb must be at least 1");
        }
        if !(a.client_rate > 0.0 && a.client_burst >= 1.0 && a.client_sessions_per_min >= 1.0) {
            bail!(
                "analytics.client_rate must be positive, analytics.client_burst and client_sessions_per_min at least 1"
            );
        }
        if [a.weight_startup, a.weight_smoothness, a.weight_success].iter().any(|w| !(0.0..=100.0).contains(w)) {
            bail!("analytics.weight_* must be between 0 and 100");
        }
        if !a.visitor_secret.is_empty()
            && (a.visitor_secret.len() != 64 || !a.visitor_secret.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            bail!("analytics.visitor_secret must be 64 hex digits (32 bytes), or empty to use data/analytics_secret");
        }
        if !(50..=100_000).contains(&self.webrtc.transcode_kbps) {
            bail!("webrtc.transcode_kbps must be 50..=100000");
        }
        if !(20..=10_000).contains(&self.srt.latency_ms) {
            bail!("srt.latency_ms must be between 20 and 10000");
        }
        if !(self.vod.max_upload_gb >= 0.0 && self.vod.upload_expiry_h > 0.0 && self.vod.processing_jobs >= 1) {
            bail!("vod: max_upload_gb must be >= 0, upload_expiry_h > 0 and processing_jobs >= 1");
        }
        let mut names: Vec<_> = self.streams.iter().map(|s| &s.name).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            bail!("streams: name {:?} is defined twice", w[0]);
        }
        self.validate_rtsp()?;
        self.validate_transcode()?;
        let p = &self.packager;
        if !(0.5..=30.0).contains(&p.segment_s) {
            bail!("packager.segment_s must be between 0.5 and 30 seconds");
        }
        if p.part_ms < 50 || p.part_ms as f64 > p.segment_s * 1000.0 / 2.0 {
            bail!("packager.part_ms must be at least 50 and at most half of packager.segment_s");
        }
        if !(3..=1000).contains(&p.window_segments) {
            bail!("packager.window_segments must be between 3 and 1000");
        }
        if self.rtmp.max_chunk_size < 128 {
            bail!("rtmp.max_chunk_size must be at least 128");
        }
        if self.rtmp.max_message_size > 0xff_ffff {
            bail!("rtmp.max_message_size cannot exceed 16777215 (RTMP's 24-bit length)");
        }
        Ok(())
    }
}

impl Config {
    fn validate_transcode(&self) -> Result<()> {
        let t = &self.transcode;
        let mut names = Vec::new();
        for rung in &t.ladder {
            if rill_media::RenditionName::new(rung.name.as_str()).is_err() {
                bail!(
                    "transcode.ladder: rung name {:?} is invalid (allowed: [A-Za-z0-9_-]{{1,64}}, not \"opus\" or \"webrtc\")",
                    rung.name
                );
            }
            if names.contains(&&rung.name) {
                bail!("transcode.ladder: rung {:?} is defined twice", rung.name);
            }
            names.push(&rung.name);
            if !(16..=7680).contains(&rung.width) || !(16..=4320).contains(&rung.height) {
                bail!("transcode.ladder: rung {:?} must be 16..=7680 x 16..=4320 pixels", rung.name);
            }
            if !(50..=100_000).contains(&rung.video_kbps) {
                bail!("transcode.ladder: video_kbps of rung {:?} must be 50..=100000", rung.name);
            }
        }
        for s in &self.streams {
            for rung in s.ladder.iter().flatten() {
                if !names.contains(&rung) {
                    bail!(
                        "streams: stream {:?} names rung {rung:?}, which [[transcode.ladder]] does not define",
                        s.name
                    );
                }
            }
        }
        if t.encoder.is_empty() || !t.encoder.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            bail!("transcode.encoder must be a GStreamer element name, e.g. x264enc");
        }
        if !(100..=60_000).contains(&t.max_lateness_ms) {
            bail!("transcode.max_lateness_ms must be between 100 and 60000");
        }
        if !(1..=3600).contains(&self.thumbnails.interval_s) || !(16..=1920).contains(&self.thumbnails.width) {
            bail!("thumbnails.interval_s must be 1..=3600 and thumbnails.width 16..=1920");
        }
        Ok(())
    }
}

/// Applies `RILL_<SECTION>_<KEY>=value`, typed like the key's default. Returns the
/// `section.key` it set, or `None` for variables that are not Rill's.
fn apply_env_override(
    table: &mut toml::Table,
    defaults: &toml::Table,
    var: &str,
    value: &str,
) -> Result<Option<String>> {
    let Some(rest) = var.strip_prefix("RILL_") else { return Ok(None) };
    let rest = rest.to_ascii_lowercase();
    if !defaults.keys().any(|section| rest.starts_with(&format!("{section}_"))) {
        // Not ours (e.g. Kubernetes' RILL_PORT / RILL_SERVICE_HOST for a Service named rill).
        eprintln!("rill: ignoring environment variable {var}: no config section matches");
        return Ok(None);
    }
    let Some((section, key)) = defaults
        .iter()
        .filter_map(|(s, v)| {
            let key = rest.strip_prefix(s.as_str())?.strip_prefix('_')?;
            v.as_table()?.contains_key(key).then(|| (s.clone(), key.to_string()))
        })
        .next()
    else {
        // A known section with an unknown key is a typo: never ignore it silently.
        bail!("environment variable {var} names no config key (expected RILL_<SECTION>_<KEY>, e.g. RILL_HTTP_LISTEN)");
    };
    let default = &defaults[&section][&key];
    let typed = match default {
        toml::Value::Integer(_) => toml::Value::Integer(
            value.trim().parse().with_context(|| format!("{var}={value:?}: {section}.{key} must be an integer"))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            value.trim().parse().with_context(|| format!("{var}={value:?}: {section}.{key} must be a number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            value.trim().parse().with_context(|| format!("{var}={value:?}: {section}.{key} must be true or false"))?,
        ),
        _ => toml::Value::String(value.to_string()),
    };
    table[&section].as_table_mut().expect("sections are tables after defaults").insert(key.clone(), typed);
    Ok(Some(format!("{section}.{key}")))
}

/// `[rtsp]`: how Rill pulls from cameras.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RtspSection {
    pub timeout_s: u64,
    pub retry_min_s: f64,
    pub retry_max_s: f64,
    /// An `on_demand` source nobody has watched for this long is disconnected.
    pub on_demand_idle_s: u64,
}

/// A `[[sources]]` camera and when it is pulled.
pub use rill_ingest::rtsp::{SourceConfig, SourceMode};

impl Config {
    fn validate_rtsp(&self) -> Result<()> {
        let r = &self.rtsp;
        if r.timeout_s == 0 || !(r.retry_min_s > 0.0 && r.retry_max_s >= r.retry_min_s) {
            bail!("rtsp: timeout_s must be > 0 and 0 < retry_min_s <= retry_max_s");
        }
        for s in &self.sources {
            s.check().map_err(|e| anyhow!("sources: {e}"))?;
        }
        let mut names: Vec<_> = self.sources.iter().map(|s| &s.name).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            bail!("sources: name {:?} is defined twice", w[0]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config> {
        let dir = std::env::temp_dir().join(format!("rill-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = file.map(|text| {
            let p = dir.join(format!("{}.toml", text.len()));
            std::fs::write(&p, text).unwrap();
            p
        });
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(Some(path.as_deref().unwrap_or(Path::new("conf/rill.toml"))), env)
    }

    #[test]
    fn defaults_load() {
        let c = Config::load(None, []).unwrap();
        assert_eq!(c.http.listen.port(), 8080);
        assert_eq!(c.rtmp.listen.port(), 1935);
        assert_eq!(c.auth.mode, AuthMode::Keys);
    }

    #[test]
    fn env_overrides_each_key() {
        let c = load(
            None,
            &[
                ("RILL_HTTP_LISTEN", "127.0.0.1:18080"),
                ("RILL_AUTH_MODE", "open"),
                ("RILL_SERVER_DATA_DIR", "/tmp/x"),
                ("RILL_BUS_RECONNECT_GRACE_S", "3"),
                ("PATH", "/bin"),
            ],
        )
        .unwrap();
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:18080");
        assert_eq!(c.auth.mode, AuthMode::Open);
        assert_eq!(c.server.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.bus.reconnect_grace_s, 3);
    }

    #[test]
    fn partial_file_takes_defaults_for_the_rest() {
        let c = load(Some("[http]\nlisten = \"127.0.0.1:9\"\n"), &[]).unwrap();
        assert_eq!(c.http.listen.port(), 9);
        assert_eq!(c.rtmp.listen.port(), 1935);
    }

    #[test]
    fn errors_name_the_key() {
        let e = load(None, &[("RILL_HTTP_LISTEN", "nonsense")]).unwrap_err();
        assert!(format!("{e:#}").contains("RILL_HTTP_LISTEN (config key http.listen)"), "{e:#}");
        let e = load(None, &[("RILL_RTMP_IDLE_TIMEOUT_S", "soon")]).unwrap_err();
        assert!(format!("{e:#}").contains("rtmp.idle_timeout_s"), "{e:#}");
        let e = load(None, &[("RILL_HTTP_LISTN", "x")]).unwrap_err();
        assert!(format!("{e:#}").contains("RILL_HTTP_LISTN"), "{e:#}");
        // Variables outside Rill's sections are someone else's (Kubernetes service links).
        assert!(load(None, &[("RILL_PORT", "tcp://10.0.0.1:8080"), ("RILL_SERVICE_HOST", "10.0.0.1")]).is_ok());
        let e = load(Some("[auth]\nmode = \"maybe\"\n"), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("mode"), "{e:#}");
        let e = load(Some("[http]\nlisten_port = 1\n"), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("listen_port"), "{e:#}");
        let e = load(Some("[[streams]]\nname = \"../x\"\nkey = \"12345678\"\n"), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("../x"), "{e:#}");
    }

    #[test]
    fn webrtc_section() {
        let c = load(None, &[]).unwrap();
        assert_eq!((c.webrtc.udp_listen.port(), c.webrtc.session_timeout_s), (8189, 15));
        assert!(c.webrtc.public_ips.is_empty());
        let c = load(None, &[("RILL_WEBRTC_UDP_LISTEN", "127.0.0.1:9189"), ("RILL_WEBRTC_MAX_SESSIONS", "7")]).unwrap();
        assert_eq!((c.webrtc.udp_listen.to_string().as_str(), c.webrtc.max_sessions), ("127.0.0.1:9189", 7));
        let c = load(Some("[webrtc]\npublic_ips = [\"203.0.113.7\"]\n"), &[]).unwrap();
        assert_eq!(c.webrtc.public_ips, vec!["203.0.113.7".parse::<std::net::IpAddr>().unwrap()]);
        assert!(load(None, &[("RILL_WEBRTC_SESSION_TIMEOUT_S", "0")]).is_err());
    }

    #[test]
    fn srt_section_and_passphrases() {
        let c = load(None, &[("RILL_SRT_LISTEN", "127.0.0.1:9000"), ("RILL_SRT_LATENCY_MS", "120")]).unwrap();
        assert_eq!((c.srt.listen.port(), c.srt.latency_ms), (9000, 120));
        assert!(c.srt.playback, "SRT playback is on by default");
        assert!(!load(None, &[("RILL_SRT_PLAYBACK", "false")]).unwrap().srt.playback);
        let stream = |p: &str| format!("[[streams]]\nname = \"s\"\nkey = \"sk_12345678\"\nsrt_passphrase = \"{p}\"\n");
        assert_eq!(
            load(Some(&stream("ten-chars!")), &[]).unwrap().streams[0].srt_passphrase.as_deref(),
            Some("ten-chars!")
        );
        for bad in ["short", &"x".repeat(80)] {
            let e = load(Some(&stream(bad)), &[]).unwrap_err();
            assert!(format!("{e:#}").contains("srt_passphrase of stream \"s\" must be 10..=79"), "{e:#}");
        }
        assert!(load(None, &[("RILL_SRT_LATENCY_MS", "5")]).is_err());
    }

    #[test]
    fn rtsp_sources_are_checked_without_showing_credentials() {
        let ok = "[[sources]]\nname = \"cam1\"\nurl = \"rtsp://u:hunter2@10.0.0.5/live\"\n";
        let c = load(Some(ok), &[]).unwrap();
        assert_eq!((c.sources.len(), c.sources[0].mode), (1, SourceMode::Always));
        assert!(!format!("{:?}", c.sources[0]).contains("hunter2"));
        let on_demand =
            load(Some("[[sources]]\nname = \"c\"\nurl = \"rtsp://cam/x\"\nmode = \"on_demand\"\n"), &[]).unwrap();
        assert_eq!(on_demand.sources[0].mode, SourceMode::OnDemand);
        for (bad, needle) in [
            ("[[sources]]\nname = \"a/b\"\nurl = \"rtsp://cam/x\"\n", "a/b"),
            ("[[sources]]\nname = \"c\"\nurl = \"http://u:hunter2@cam/x\"\n", "scheme"),
            ("[[sources]]\nname = \"c\"\nurl = \"rtsp://cam/x\"\nmode = \"sometimes\"\n", "mode"),
            (
                "[[sources]]\nname = \"c\"\nurl = \"rtsp://a/x\"\n[[sources]]\nname = \"c\"\nurl = \"rtsp://b/x\"\n",
                "twice",
            ),
        ] {
            let e = format!("{:#}", load(Some(bad), &[]).unwrap_err());
            assert!(e.contains(needle) && !e.contains("hunter2"), "{e}");
        }
        let e = load(None, &[("RILL_RTSP_RETRY_MIN_S", "0")]).unwrap_err();
        assert!(format!("{e:#}").contains("retry_min_s"), "{e:#}");
    }
}
