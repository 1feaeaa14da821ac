//! The camera sources Rill pulls: `[[sources]]` from the config and sources created through
//! the API (persisted in `sources.json`, mode 0600: it holds camera credentials), each pulled
//! always or on demand (started by a viewer's request through the Bus, released when nobody
//! watches). [`Cameras`] owns their lifecycle, their API view ([`SourceView`], URLs redacted)
//! and their `rill_rtsp_*` metrics.

use super::config::{InvalidSource, SourceConfig, SourceMode};
use super::source::{spawn, RtspSettings, SourceHandle, SourceState, SourceStatus};
use super::url::{redact, CameraUrl};
use rill_media::metrics::{Exposition, Kind};
use rill_media::persist::write_private;
use rill_media::sync::lock;
use rill_media::Bus;
use rill_media::{StreamName, StreamPath};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::time::Instant;

/// What the manager is given.
#[derive(Debug, Clone)]
pub struct CamerasConfig {
    pub settings: RtspSettings,
    /// Where API-created sources are kept (`<data_dir>/sources.json`).
    pub store: PathBuf,
    /// An on-demand source nobody has watched for this long is released.
    pub on_demand_idle: Duration,
    /// `[[sources]]`: they win over stored sources of the same name.
    pub sources: Vec<SourceConfig>,
}

/// Where a source was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceOrigin {
    Config,
    Api,
}

/// Why the stored sources could not be loaded.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Invalid(#[from] InvalidSource),
    #[error("reading {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parsing {}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
}

/// Why an API request on sources was refused.
#[derive(Debug, Error)]
pub enum CameraError {
    #[error(transparent)]
    Invalid(#[from] InvalidSource),
    #[error("source {0:?} already exists")]
    Exists(String),
    #[error("source {0:?} does not exist")]
    NotFound(String),
    #[error("source {0:?} is defined in the config file; change it there")]
    FromConfig(String),
    #[error("cannot store sources: {0}")]
    Store(#[from] std::io::Error),
}

/// How long ago a stream was last watched other than through a Bus subscription (LL-HLS and
/// DASH are served from the packager's memory); `None` when it is not known there.
pub trait LastWatched: Send + Sync + 'static {
    fn unwatched_for(&self, name: &str) -> Option<Duration>;
}

impl<F: Fn(&str) -> Option<Duration> + Send + Sync + 'static> LastWatched for F {
    fn unwatched_for(&self, name: &str) -> Option<Duration> {
        self(name)
    }
}

/// Whether an on-demand pull running since `running_since` is released at `now`: it has had
/// the idle time, and nobody watches — no Bus viewer, no LL-HLS/DASH request within the idle
/// time.
pub fn is_idle(
    now: Instant,
    running_since: Instant,
    idle: Duration,
    viewers: usize,
    unwatched_for: Option<Duration>,
) -> bool {
    now.saturating_duration_since(running_since) >= idle && viewers == 0 && unwatched_for.is_none_or(|d| d >= idle)
}

/// What `sources.json` holds per API-created source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredSource {
    name: String,
    url: String,
    mode: SourceMode,
    created_at: u64,
}

impl StoredSource {
    fn config(&self) -> SourceConfig {
        SourceConfig { name: self.name.clone(), url: self.url.clone(), mode: self.mode }
    }
}

struct Entry {
    stored: StoredSource,
    origin: SourceOrigin,
    /// The running pull; `None` while an on-demand source is idle (or a new source is being
    /// stored).
    handle: Option<Arc<SourceHandle>>,
    /// When the running pull started (an on-demand source gets at least the idle time).
    running_since: Instant,
}

/// The sources, and the version of the API-created ones (bumped on each change).
#[derive(Default)]
struct Table {
    entries: BTreeMap<String, Entry>,
    version: u64,
}

impl Table {
    /// Marks a change of the API sources: the new version and what to store.
    fn changed(&mut self) -> (u64, Vec<StoredSource>) {
        self.version += 1;
        let api = self.entries.values().filter(|e| e.origin == SourceOrigin::Api).map(|e| e.stored.clone()).collect();
        (self.version, api)
    }
}

/// Starts pulling a camera onto the Bus ([`spawn`] in the server; a fake in tests).
type Pull = Box<dyn Fn(&Bus, &StreamName, CameraUrl, &RtspSettings) -> Arc<SourceHandle> + Send + Sync>;

/// Every camera source.
pub struct Cameras {
    bus: Bus,
    settings: RtspSettings,
    file: PathBuf,
    on_demand_idle: Duration,
    table: Mutex<Table>,
    /// The version of the table `sources.json` holds. Held while writing, never with `table`.
    stored_version: Mutex<u64>,
    /// Reconnects of deleted or idled sources (the metric is a counter: it never goes down).
    removed_reconnects: AtomicU64,
    pull: Pull,
}

/// The Bus path of source `name` (names are checked when a source is defined).
fn live_path(name: &str) -> Option<StreamPath> {
    StreamPath::live(name).ok()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Cameras {
    /// Starts the config's sources and those stored by the API (the config wins on a name
    /// clash). Must run inside the tokio runtime.
    pub fn start(bus: Bus, config: CamerasConfig) -> Result<Cameras, StartError> {
        let pull: Pull = Box::new(|bus, name, url, settings| spawn(bus.clone(), name, url, settings.clone()));
        Self::start_with(bus, config, pull)
    }

    fn start_with(bus: Bus, config: CamerasConfig, pull: Pull) -> Result<Cameras, StartError> {
        let cameras = Cameras {
            bus,
            settings: config.settings,
            file: config.store,
            on_demand_idle: config.on_demand_idle,
            table: Mutex::default(),
            stored_version: Mutex::new(0),
            removed_reconnects: AtomicU64::new(0),
            pull,
        };
        let mut entries = BTreeMap::new();
        for s in &config.sources {
            let stored = StoredSource { name: s.name.clone(), url: s.url.clone(), mode: s.mode, created_at: 0 };
            let url = s.check()?;
            entries.insert(s.name.clone(), cameras.entry(stored, SourceOrigin::Config, url));
        }
        for s in cameras.load()? {
            if entries.contains_key(&s.name) {
                tracing::warn!(source = %s.name, "source in sources.json is also in the config; the config wins");
                continue;
            }
            match s.config().check() {
                Ok(url) => {
                    entries.insert(s.name.clone(), cameras.entry(s, SourceOrigin::Api, url));
                }
                Err(e) => tracing::error!(source = %s.name, error = %e, "stored source skipped"),
            }
        }
        lock(&cameras.table).entries = entries;
        Ok(cameras)
    }

    fn load(&self) -> Result<Vec<StoredSource>, StartError> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StartError::Read { path: self.file.clone(), source }),
        };
        serde_json::from_str(&text).map_err(|source| StartError::Parse { path: self.file.clone(), source })
    }

    /// The entry of a checked source, activated: pulling at once, or (on demand) registered
    /// on the Bus to be started by the first viewer.
    fn entry(&self, stored: StoredSource, origin: SourceOrigin, url: CameraUrl) -> Entry {
        let mut entry = Entry { stored, origin, handle: None, running_since: Instant::now() };
        self.activate(&mut entry, url);
        entry
    }

    fn activate(&self, entry: &mut Entry, url: CameraUrl) {
        match entry.stored.mode {
            SourceMode::Always => {
                let Some(path) = live_path(&entry.stored.name) else { return };
                entry.handle = Some((self.pull)(&self.bus, &path.name, url, &self.settings));
                entry.running_since = Instant::now();
            }
            SourceMode::OnDemand => {
                if let Some(path) = live_path(&entry.stored.name) {
                    self.bus.set_on_demand(&path, true);
                }
            }
        }
    }

    /// Stops a source's pull, keeping its reconnects for the counter.
    fn release(&self, handle: &SourceHandle) {
        handle.stop();
        self.removed_reconnects.fetch_add(handle.status().reconnects, Ordering::Relaxed);
    }

    /// Serves on-demand sources: starts one when a viewer asks for its stream, stops it once
    /// nobody has watched it (Bus viewers, or what `watched` knows: LL-HLS/DASH requests) for
    /// the idle time.
    pub fn serve_on_demand(self: &Arc<Self>, watched: impl LastWatched) {
        let (this, mut demanded) = (self.clone(), self.bus.demanded_streams());
        tokio::spawn(async move {
            loop {
                match demanded.recv().await {
                    Ok(path) => this.start_on_demand(&path),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                this.stop_idle(Instant::now(), &watched);
            }
        });
    }

    /// A viewer asked for Bus path `path`: pulls its on-demand source if it is idle.
    pub fn start_on_demand(&self, path: &StreamPath) {
        if !path.is_source() {
            return;
        }
        let name = path.name.as_str();
        let mut table = lock(&self.table);
        let Some(entry) = table.entries.get_mut(name) else { return };
        if entry.stored.mode != SourceMode::OnDemand || entry.handle.is_some() {
            return;
        }
        let Ok(url) = entry.stored.config().check() else { return };
        tracing::info!(source = %name, "a viewer asked for the stream: pulling the camera");
        entry.handle = Some((self.pull)(&self.bus, &path.name, url, &self.settings));
        entry.running_since = Instant::now();
    }

    /// Releases the on-demand sources nobody watches at `now`; returns their names.
    pub fn stop_idle(&self, now: Instant, watched: &dyn LastWatched) -> Vec<String> {
        let mut released = Vec::new();
        let mut table = lock(&self.table);
        for (name, entry) in table.entries.iter_mut() {
            if entry.stored.mode != SourceMode::OnDemand {
                continue;
            }
            let Some(handle) = &entry.handle else { continue };
            let snapshot = live_path(name).and_then(|path| self.bus.stream_snapshot(&path));
            let viewers = snapshot.map_or(0, |s| s.viewers.values().sum::<usize>());
            if !is_idle(now, entry.running_since, self.on_demand_idle, viewers, watched.unwatched_for(name)) {
                continue;
            }
            tracing::info!(source = %name, idle_s = self.on_demand_idle.as_secs(), "nobody watching: camera released");
            self.release(handle);
            entry.handle = None;
            released.push(name.clone());
        }
        released
    }

    /// Creates an API source: stores it in `sources.json`, then starts it.
    pub fn create(&self, name: &str, url: &str, mode: SourceMode) -> Result<SourceView, CameraError> {
        let stored = StoredSource {
            name: name.to_string(),
            url: url.to_string(),
            mode,
            created_at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        let url = stored.config().check()?;
        let (version, api) = {
            let mut table = lock(&self.table);
            if table.entries.contains_key(name) {
                return Err(CameraError::Exists(name.into()));
            }
            // Reserved (not pulling) until it is stored.
            let entry = Entry {
                stored: stored.clone(),
                origin: SourceOrigin::Api,
                handle: None,
                running_since: Instant::now(),
            };
            table.entries.insert(name.to_string(), entry);
            table.changed()
        };
        if let Err(e) = self.store(version, api) {
            let mut table = lock(&self.table);
            if table.entries.get(name).is_some_and(|e| e.handle.is_none() && e.stored == stored) {
                table.entries.remove(name);
            }
            let (version, api) = table.changed();
            drop(table);
            self.store_after_failure(version, api);
            return Err(e.into());
        }
        let mut table = lock(&self.table);
        match table.entries.get_mut(name) {
            Some(entry) if entry.stored == stored && entry.handle.is_none() => {
                self.activate(entry, url);
                Ok(SourceView::new(entry, SystemTime::now()))
            }
            // Deleted (and perhaps created again) while being stored: the delete stands.
            _ => Err(CameraError::NotFound(name.into())),
        }
    }

    /// Stops an API source and forgets it.
    pub fn delete(&self, name: &str) -> Result<(), CameraError> {
        let (removed, version, api) = {
            let mut table = lock(&self.table);
            match table.entries.get(name) {
                None => return Err(CameraError::NotFound(name.into())),
                Some(e) if e.origin == SourceOrigin::Config => return Err(CameraError::FromConfig(name.into())),
                Some(_) => {}
            }
            let removed = table.entries.remove(name).expect("present");
            let (version, api) = table.changed();
            (removed, version, api)
        };
        if let Err(e) = self.store(version, api) {
            let mut table = lock(&self.table);
            if table.entries.contains_key(name) {
                // Created again meanwhile: that one stands.
                drop(table);
                if let Some(handle) = &removed.handle {
                    self.release(handle);
                }
            } else {
                table.entries.insert(name.to_string(), removed);
                let (version, api) = table.changed();
                drop(table);
                self.store_after_failure(version, api);
            }
            return Err(e.into());
        }
        let table = lock(&self.table);
        if let Some(path) = live_path(name).filter(|_| !table.entries.contains_key(name)) {
            self.bus.set_on_demand(&path, false);
        }
        drop(table);
        if let Some(handle) = &removed.handle {
            self.release(handle);
        }
        Ok(())
    }

    /// Writes version `version` of the API sources, unless a newer one is on disk already.
    /// Runs without the table's lock: an fsync does not hold up the API, on-demand starts or
    /// metrics.
    fn store(&self, version: u64, api: Vec<StoredSource>) -> std::io::Result<()> {
        let mut stored_version = lock(&self.stored_version);
        if *stored_version >= version {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&api).expect("sources serialize");
        write_private(&self.file, &json)?;
        *stored_version = version;
        Ok(())
    }

    /// Stores the table as it is after a change was rolled back, so that the file matches it
    /// even if a newer snapshot holding the change was written meanwhile.
    fn store_after_failure(&self, version: u64, api: Vec<StoredSource>) {
        if let Err(e) = self.store(version, api) {
            tracing::error!(file = %self.file.display(), error = %e, "sources.json write failed again");
        }
    }

    pub fn list(&self) -> Vec<SourceView> {
        let now = SystemTime::now();
        lock(&self.table).entries.values().map(|e| SourceView::new(e, now)).collect()
    }

    pub fn get(&self, name: &str) -> Option<SourceView> {
        lock(&self.table).entries.get(name).map(|e| SourceView::new(e, SystemTime::now()))
    }

    /// Appends `rill_rtsp_sources{state}` and `rill_rtsp_reconnects_total` to a Prometheus
    /// text exposition.
    pub fn write_metrics(&self, out: &mut Exposition) {
        let (idle, statuses): (usize, Vec<SourceStatus>) = {
            let table = lock(&self.table);
            let idle = table.entries.values().filter(|e| e.handle.is_none()).count();
            (idle, table.entries.values().filter_map(|e| Some(e.handle.as_ref()?.status())).collect())
        };
        let help = "RTSP sources by state.";
        out.labelled("rill_rtsp_sources", Kind::Gauge, help, &[("state", "idle")], idle as f64);
        for state in [SourceState::Connecting, SourceState::Live, SourceState::Retrying] {
            let n = statuses.iter().filter(|s| s.state == state).count();
            out.labelled("rill_rtsp_sources", Kind::Gauge, help, &[("state", state.as_str())], n as f64);
        }
        let reconnects =
            statuses.iter().map(|s| s.reconnects).sum::<u64>() + self.removed_reconnects.load(Ordering::Relaxed);
        out.sample(
            "rill_rtsp_reconnects_total",
            Kind::Counter,
            "Reconnection attempts of RTSP sources.",
            reconnects as f64,
        );
    }
}

/// A source as `GET /api/v1/sources` shows it: the URL redacted; the pull's state when it runs.
#[derive(Clone, Debug, Serialize)]
pub struct SourceView {
    pub name: String,
    /// The camera URL without credentials.
    pub url: String,
    pub mode: SourceMode,
    pub origin: SourceOrigin,
    /// `idle` (on demand, not pulling), or the pull's state.
    pub state: &'static str,
    /// Where to watch it (HTTP-FLV).
    pub stream_url: String,
    #[serde(flatten)]
    pub pull: Option<PullView>,
}

/// The state of a running pull.
#[derive(Clone, Debug, Serialize)]
pub struct PullView {
    /// When the state was entered (Unix ms).
    pub since_ms: u64,
    pub last_error: Option<String>,
    pub next_retry_ms: Option<u64>,
    pub next_retry_in_s: Option<f64>,
    pub reconnects: u64,
    /// What the camera sends that is not carried.
    pub ignored: Vec<String>,
}

impl SourceView {
    fn new(entry: &Entry, now: SystemTime) -> SourceView {
        let status = entry.handle.as_ref().map(|h| h.status());
        SourceView {
            name: entry.stored.name.clone(),
            url: redact(&entry.stored.url),
            mode: entry.stored.mode,
            origin: entry.origin,
            state: status.as_ref().map_or("idle", |s| s.state.as_str()),
            stream_url: format!("/live/{}.flv", entry.stored.name),
            pull: status.map(|s| PullView {
                since_ms: unix_ms(s.since),
                last_error: s.last_error,
                next_retry_ms: s.next_retry.map(unix_ms),
                next_retry_in_s: s.next_retry.map(|t| t.duration_since(now).map_or(0.0, |d| d.as_secs_f64())),
                reconnects: s.reconnects,
                ignored: s.ignored,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rill_media::PublisherInfo;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    const IDLE: Duration = Duration::from_secs(30);

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rill-cameras-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn config(dir: &Path, sources: Vec<SourceConfig>) -> CamerasConfig {
        CamerasConfig {
            settings: RtspSettings::default(),
            store: dir.join("sources.json"),
            on_demand_idle: IDLE,
            sources,
        }
    }

    fn source(name: &str, url: &str, mode: SourceMode) -> SourceConfig {
        SourceConfig { name: name.into(), url: url.into(), mode }
    }

    /// A pull that connects nowhere: a handle in state `connecting`, with 2 reconnects.
    fn fake_pull(pulls: Arc<Mutex<Vec<Arc<SourceHandle>>>>) -> Pull {
        Box::new(move |_bus, name, url, _settings| {
            let handle = SourceHandle::fake(name.as_str(), &url, 2);
            lock(&pulls).push(handle.clone());
            handle
        })
    }

    fn start(dir: &Path, sources: Vec<SourceConfig>) -> (Cameras, Arc<Mutex<Vec<Arc<SourceHandle>>>>) {
        let pulls = Arc::default();
        let cameras =
            Cameras::start_with(Bus::new(Default::default()), config(dir, sources), fake_pull(Arc::clone(&pulls)))
                .unwrap();
        (cameras, pulls)
    }

    fn names(cameras: &Cameras) -> Vec<(String, SourceOrigin)> {
        cameras.list().into_iter().map(|v| (v.name, v.origin)).collect()
    }

    #[tokio::test]
    async fn api_sources_persist_privately_and_come_back() {
        let dir = tempdir("persist");
        let (cameras, pulls) = start(&dir, vec![]);
        cameras.create("door", "rtsp://u:pw@10.0.0.7/s", SourceMode::Always).unwrap();
        cameras.create("yard", "rtsp://10.0.0.8/s", SourceMode::OnDemand).unwrap();
        assert_eq!(lock(&pulls).len(), 1, "an on-demand source waits for a viewer");
        let file = dir.join("sources.json");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        drop(cameras);

        let (again, _) = start(&dir, vec![]);
        assert_eq!(names(&again), [("door".into(), SourceOrigin::Api), ("yard".into(), SourceOrigin::Api)]);
        assert_eq!(again.get("yard").unwrap().mode, SourceMode::OnDemand);
        again.delete("door").unwrap();
        let (third, _) = start(&dir, vec![]);
        assert_eq!(names(&third), [("yard".into(), SourceOrigin::Api)]);
        assert!(matches!(third.create("yard", "rtsp://x/y", SourceMode::Always), Err(CameraError::Exists(_))));
        assert!(matches!(third.delete("gone"), Err(CameraError::NotFound(_))));
        assert!(matches!(third.create("a/b", "rtsp://x/y", SourceMode::Always), Err(CameraError::Invalid(_))));
    }

    #[tokio::test]
    async fn the_config_wins_a_name_clash_and_its_sources_cannot_be_deleted() {
        let dir = tempdir("clash");
        let (cameras, _) = start(&dir, vec![]);
        cameras.create("cam", "rtsp://api-camera/s", SourceMode::Always).unwrap();
        drop(cameras);
        let (cameras, pulls) = start(&dir, vec![source("cam", "rtsp://config-camera/s", SourceMode::Always)]);
        let view = cameras.get("cam").unwrap();
        assert_eq!((view.origin, view.url.as_str()), (SourceOrigin::Config, "rtsp://config-camera/s"));
        assert_eq!(lock(&pulls).len(), 1);
        assert!(matches!(cameras.delete("cam"), Err(CameraError::FromConfig(_))));
        assert!(!lock(&pulls)[0].is_stopped());
    }

    #[tokio::test]
    async fn a_store_that_fails_leaves_nothing_behind() {
        let dir = tempdir("fail");
        let (cameras, pulls) = start(&dir.join("missing"), vec![]);
        let e = cameras.create("cam", "rtsp://c/s", SourceMode::Always).unwrap_err();
        assert!(matches!(e, CameraError::Store(_)), "{e}");
        assert!(cameras.list().is_empty() && lock(&pulls).is_empty());
    }

    #[tokio::test]
    async fn concurrent_changes_store_the_newest_snapshot() {
        let dir = tempdir("concurrent");
        let (cameras, _) = start(&dir, vec![]);
        std::thread::scope(|s| {
            for i in 0..8 {
                let cameras = &cameras;
                s.spawn(move || cameras.create(&format!("cam{i}"), "rtsp://c/s", SourceMode::OnDemand).unwrap());
            }
        });
        let stored: Vec<StoredSource> =
            serde_json::from_slice(&std::fs::read(dir.join("sources.json")).unwrap()).unwrap();
        assert_eq!(stored.len(), 8);
    }

    #[tokio::test]
    async fn the_view_never_shows_credentials() {
        let dir = tempdir("view");
        let (cameras, _) =
            start(&dir, vec![source("idle", "rtsp://admin:hunter2@cam/x?pwd=s3cret", SourceMode::OnDemand)]);
        let created = cameras.create("door", "rtsp://admin:hunter2@10.0.0.7/s", SourceMode::Always).unwrap();
        let mut value = serde_json::to_value(&created).unwrap();
        assert!(value["since_ms"].as_u64().unwrap() > 0);
        value["since_ms"] = json!(0);
        assert_eq!(
            value,
            json!({
                "name": "door", "url": "rtsp://10.0.0.7/s", "mode": "always", "origin": "api",
                "state": "connecting", "stream_url": "/live/door.flv", "since_ms": 0, "last_error": null,
                "next_retry_ms": null, "next_retry_in_s": null, "reconnects": 2, "ignored": [],
            })
        );
        let idle = serde_json::to_value(cameras.get("idle").unwrap()).unwrap();
        assert_eq!(
            idle,
            json!({
                "name": "idle", "url": "rtsp://cam/x?pwd=***", "mode": "on_demand", "origin": "config",
                "state": "idle", "stream_url": "/live/idle.flv",
            })
        );
        let listed = serde_json::to_string(&cameras.list()).unwrap();
        assert!(!listed.contains("hunter2") && !listed.contains("s3cret"), "{listed}");
    }

    #[test]
    fn the_idle_decision() {
        let t0 = Instant::now();
        let later = t0 + IDLE;
        assert!(!is_idle(t0 + IDLE / 2, t0, IDLE, 0, None), "a pull gets the idle time first");
        assert!(is_idle(later, t0, IDLE, 0, None));
        assert!(!is_idle(later, t0, IDLE, 1, None), "a Bus viewer");
        assert!(!is_idle(later, t0, IDLE, 0, Some(Duration::from_secs(5))), "a recent LL-HLS request");
        assert!(is_idle(later, t0, IDLE, 0, Some(IDLE)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_on_demand_source_runs_while_watched() {
        let dir = tempdir("on-demand");
        let (cameras, pulls) = start(&dir, vec![source("cam", "rtsp://cam/x", SourceMode::OnDemand)]);
        let never_watched = |_: &str| None;
        cameras.start_on_demand(&"live/other".parse().unwrap());
        cameras.start_on_demand(&"live/cam/360p".parse().unwrap());
        assert!(lock(&pulls).is_empty());
        cameras.start_on_demand(&"live/cam".parse().unwrap());
        cameras.start_on_demand(&"live/cam".parse().unwrap()); // already pulling
        assert_eq!(lock(&pulls).len(), 1);

        tokio::time::advance(IDLE / 2).await;
        assert!(cameras.stop_idle(Instant::now(), &never_watched).is_empty(), "started just now");
        tokio::time::advance(IDLE).await;
        let publisher = cameras
            .bus
            .publish(&"live/cam".parse().unwrap(), PublisherInfo { protocol: "rtsp", peer: "cam".into() })
            .unwrap();
        let viewer = cameras.bus.subscribe(&"live/cam".parse().unwrap(), "flv").unwrap();
        assert!(cameras.stop_idle(Instant::now(), &never_watched).is_empty(), "a viewer");
        drop(viewer);
        let watched_by_hls = |_: &str| Some(Duration::from_secs(1));
        assert!(cameras.stop_idle(Instant::now(), &watched_by_hls).is_empty(), "an LL-HLS viewer");
        assert_eq!(cameras.stop_idle(Instant::now(), &never_watched), ["cam"]);
        assert!(lock(&pulls)[0].is_stopped());
        assert_eq!(cameras.get("cam").unwrap().state, "idle");
        drop(publisher);

        let mut exposition = rill_media::metrics::Exposition::new();
        cameras.write_metrics(&mut exposition);
        assert_eq!(
            exposition.render(),
            "# HELP rill_rtsp_sources RTSP sources by state.\n# TYPE rill_rtsp_sources gauge\n\
             rill_rtsp_sources{state=\"idle\"} 1\nrill_rtsp_sources{state=\"connecting\"} 0\n\
             rill_rtsp_sources{state=\"live\"} 0\nrill_rtsp_sources{state=\"retrying\"} 0\n\
             # HELP rill_rtsp_reconnects_total Reconnection attempts of RTSP sources.\n\
             # TYPE rill_rtsp_reconnects_total counter\nrill_rtsp_reconnects_total 2\n"
        );
    }
}
