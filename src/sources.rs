//! RTSP sources (cameras Rill pulls from): `[[sources]]` from the config and sources created
//! through the API (persisted in `<data_dir>/sources.json`, mode 0600: it holds camera
//! credentials), each running a [`rill_ingest::rtsp`] task — always, or on demand (started by a
//! viewer's request through the Bus, released when nobody watches); the `/api/v1/sources`
//! routes and the sources' metrics. Camera URLs are shown only redacted.

use crate::api::{error, refuse_non_admin};
use crate::config::{Config, SourceConfig, SourceMode};
use crate::streams::{write_private, Origin};
use crate::AppState;
use anyhow::{Context, Result};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rill_ingest::rtsp::{self, RtspSettings, SourceHandle, SourceState, SourceStatus};
use rill_media::Bus;
use rill_media::StreamPath;
use rill_relay::packager::Packagers;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{0}")]
    Invalid(String),
    #[error("source {0:?} already exists")]
    Exists(String),
    #[error("source {0:?} does not exist")]
    NotFound(String),
    #[error("source {0:?} is defined in the config file; change it there")]
    FromConfig(String),
    #[error("cannot store sources: {0}")]
    Store(#[from] std::io::Error),
}

impl IntoResponse for SourceError {
    fn into_response(self) -> Response {
        let status = match self {
            SourceError::Invalid(_) => StatusCode::BAD_REQUEST,
            SourceError::Exists(_) | SourceError::FromConfig(_) => StatusCode::CONFLICT,
            SourceError::NotFound(_) => StatusCode::NOT_FOUND,
            SourceError::Store(_) => {
                tracing::error!(error = %self, "sources.json write failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        error(status, self)
    }
}

/// What `sources.json` holds per API-created source.
#[derive(Clone, Serialize, Deserialize)]
struct StoredSource {
    name: String,
    url: String,
    mode: SourceMode,
    created_at: u64,
}

struct Entry {
    stored: StoredSource,
    origin: Origin,
    /// The running pull; `None` while an on-demand source is idle.
    handle: Option<Arc<SourceHandle>>,
    /// When the running pull started (an on-demand source gets at least the idle time).
    running_since: Instant,
}

/// The running sources.
pub struct Sources {
    bus: Bus,
    settings: RtspSettings,
    file: PathBuf,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Reconnects of deleted or idled sources (the metric is a counter: it never goes down).
    removed_reconnects: AtomicU64,
    /// An on-demand source unwatched this long is stopped.
    on_demand_idle: Duration,
}

impl Sources {
    /// Starts the config's sources and those stored by the API (the config wins on a name
    /// clash). Must run inside the tokio runtime.
    pub fn start(config: &Config, bus: Bus) -> Result<Sources> {
        let r = &config.rtsp;
        let timeout = Duration::from_secs(r.timeout_s);
        let settings = RtspSettings {
            connect_timeout: timeout,
            stall_timeout: timeout,
            retry_min: Duration::from_secs_f64(r.retry_min_s),
            retry_max: Duration::from_secs_f64(r.retry_max_s),
            ..RtspSettings::default()
        };
        let sources = Sources {
            bus,
            settings,
            file: config.server.data_dir.join("sources.json"),
            entries: Mutex::new(BTreeMap::new()),
            removed_reconnects: AtomicU64::new(0),
            on_demand_idle: Duration::from_secs(r.on_demand_idle_s),
        };
        let mut entries = sources.lock();
        for s in &config.sources {
            let stored = StoredSource { name: s.name.clone(), url: s.url.clone(), mode: s.mode, created_at: 0 };
            let entry = sources.spawn(stored, Origin::Config).map_err(anyhow::Error::msg)?;
            entries.insert(s.name.clone(), entry);
        }
        if sources.file.exists() {
            let text = std::fs::read_to_string(&sources.file)
                .with_context(|| format!("reading {}", sources.file.display()))?;
            let stored: Vec<StoredSource> =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", sources.file.display()))?;
            for s in stored {
                if entries.contains_key(&s.name) {
                    tracing::warn!(source = %s.name, "source in sources.json is also in the config; the config wins");
                    continue;
                }
                match sources.spawn(s.clone(), Origin::Api) {
                    Ok(entry) => {
                        entries.insert(s.name.clone(), entry);
                    }
                    Err(e) => tracing::error!(source = %s.name, error = %e, "stored source skipped"),
                }
            }
        }
        drop(entries);
        Ok(sources)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry of a checked source: pulling at once, or (on demand) registered on the Bus to be
    /// started by the first viewer.
    fn spawn(&self, stored: StoredSource, origin: Origin) -> Result<Entry, String> {
        let config = SourceConfig { name: stored.name.clone(), url: stored.url.clone(), mode: stored.mode };
        let url = config.check()?;
        let path = StreamPath::live(&stored.name).map_err(|e| e.to_string())?;
        let handle = match stored.mode {
            SourceMode::Always => Some(rtsp::spawn(self.bus.clone(), &path.name, url, self.settings.clone())),
            SourceMode::OnDemand => {
                self.bus.set_on_demand(&path, true);
                None
            }
        };
        Ok(Entry { stored, origin, handle, running_since: Instant::now() })
    }

    /// Serves on-demand sources: starts one when a viewer asks for its stream, stops it once
    /// nobody has watched it (Bus viewers, or LL-HLS/DASH requests) for the idle time.
    pub fn serve_on_demand(self: &Arc<Self>, packagers: Arc<Packagers>) {
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
                this.stop_idle(&packagers);
            }
        });
    }

    fn start_on_demand(&self, path: &StreamPath) {
        if !path.is_source() {
            return;
        }
        let name = path.name.as_str();
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(name) else { return };
        if entry.stored.mode != SourceMode::OnDemand || entry.handle.is_some() {
            return;
        }
        let config = SourceConfig { name: name.to_string(), url: entry.stored.url.clone(), mode: entry.stored.mode };
        let Ok(url) = config.check() else { return };
        tracing::info!(source = %name, "a viewer asked for the stream: pulling the camera");
        entry.handle = Some(rtsp::spawn(self.bus.clone(), &path.name, url, self.settings.clone()));
        entry.running_since = Instant::now();
    }

    fn stop_idle(&self, packagers: &Packagers) {
        let mut entries = self.lock();
        for (name, entry) in entries.iter_mut() {
            if entry.stored.mode != SourceMode::OnDemand || entry.running_since.elapsed() < self.on_demand_idle {
                continue;
            }
            let Some(handle) = &entry.handle else { continue };
            let snapshot = StreamPath::live(name).ok().and_then(|path| self.bus.stream_snapshot(&path));
            let viewers = snapshot.map_or(0, |s| s.viewers.values().sum::<usize>());
            let packaged_watched = packagers.get(name).is_some_and(|p| p.unwatched_for() < self.on_demand_idle);
            if viewers > 0 || packaged_watched {
                continue;
            }
            tracing::info!(source = %name, idle_s = self.on_demand_idle.as_secs(), "nobody watching: camera released");
            handle.stop();
            self.removed_reconnects.fetch_add(handle.status().reconnects, Ordering::Relaxed);
            entry.handle = None;
        }
    }

    /// Creates and starts an API source, stored in `sources.json`.
    pub fn create(&self, name: &str, url: &str, mode: SourceMode) -> Result<Value, SourceError> {
        let stored = StoredSource {
            name: name.to_string(),
            url: url.to_string(),
            mode,
            created_at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        let config = SourceConfig { name: stored.name.clone(), url: stored.url.clone(), mode };
        config.check().map_err(SourceError::Invalid)?;
        let mut entries = self.lock();
        if entries.contains_key(name) {
            return Err(SourceError::Exists(name.into()));
        }
        let mut all: Vec<StoredSource> =
            entries.values().filter(|e| e.origin == Origin::Api).map(|e| e.stored.clone()).collect();
        all.push(stored.clone());
        self.store(&all)?;
        let entry = self.spawn(stored, Origin::Api).map_err(SourceError::Invalid)?;
        let value = entry_json(&entry);
        entries.insert(name.to_string(), entry);
        Ok(value)
    }

    /// Stops an API source and forgets it.
    pub fn delete(&self, name: &str) -> Result<(), SourceError> {
        let mut entries = self.lock();
        match entries.get(name) {
            None => return Err(SourceError::NotFound(name.into())),
            Some(e) if e.origin == Origin::Config => return Err(SourceError::FromConfig(name.into())),
            Some(_) => {}
        }
        let all: Vec<StoredSource> = entries
            .values()
            .filter(|e| e.origin == Origin::Api && e.stored.name != name)
            .map(|e| e.stored.clone())
            .collect();
        self.store(&all)?;
        if let Some(entry) = entries.remove(name) {
            if let Ok(path) = StreamPath::live(name) {
                self.bus.set_on_demand(&path, false);
            }
            if let Some(handle) = entry.handle {
                handle.stop();
                self.removed_reconnects.fetch_add(handle.status().reconnects, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn store(&self, api: &[StoredSource]) -> Result<(), SourceError> {
        let json = serde_json::to_vec_pretty(api).expect("sources serialize");
        write_private(&self.file, &json)?;
        Ok(())
    }

    pub fn list(&self) -> Vec<Value> {
        self.lock().values().map(entry_json).collect()
    }

    pub fn get(&self, name: &str) -> Option<Value> {
        self.lock().get(name).map(entry_json)
    }

    /// On-demand sources not pulling now.
    fn idle(&self) -> usize {
        self.lock().values().filter(|e| e.handle.is_none()).count()
    }

    /// Statuses for metrics.
    fn statuses(&self) -> Vec<SourceStatus> {
        self.lock().values().filter_map(|e| Some(e.handle.as_ref()?.status())).collect()
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn entry_json(entry: &Entry) -> Value {
    let mut value = json!({
        "name": entry.stored.name,
        "url": rtsp::redact(&entry.stored.url),
        "mode": entry.stored.mode,
        "origin": entry.origin,
        "state": "idle",
        "stream_url": format!("/live/{}.flv", entry.stored.name),
    });
    if let Some(handle) = &entry.handle {
        let status = handle.status();
        let details = json!({
            "state": status.state.as_str(),
            "since_ms": unix_ms(status.since),
            "last_error": status.last_error,
            "next_retry_ms": status.next_retry.map(unix_ms),
            "next_retry_in_s": status.next_retry.map(|t| t.duration_since(SystemTime::now()).map_or(0.0, |d| d.as_secs_f64())),
            "reconnects": status.reconnects,
            "ignored": status.ignored,
        });
        if let (Some(value), Value::Object(details)) = (value.as_object_mut(), details) {
            value.extend(details);
        }
    }
    value
}

/// `/api/v1/sources` (admin token on every route).
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/sources", get(list).post(create)).route("/sources/{name}", get(show).delete(delete))
}

#[derive(Deserialize)]
struct CreateSource {
    name: String,
    url: String,
    #[serde(default)]
    mode: SourceMode,
}

async fn list(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    Json(json!({ "sources": app.sources.list() })).into_response()
}

async fn show(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    match app.sources.get(&name) {
        Some(v) => Json(v).into_response(),
        None => SourceError::NotFound(name).into_response(),
    }
}

async fn create(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<CreateSource>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    let Json(request) = match body {
        // The rejection text can quote the body: never echo it (it may hold credentials).
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected JSON {\"name\": \"...\", \"url\": \"rtsp://...\", \"mode\": \"always\"}",
            )
        }
    };
    match app.sources.create(&request.name, &request.url, request.mode) {
        Ok(value) => {
            tracing::info!(source = %request.name, url = %rtsp::redact(&request.url), "source created");
            (StatusCode::CREATED, Json(value)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn delete(State(app): State<Arc<AppState>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(refusal) = refuse_non_admin(&app, &headers) {
        return refusal;
    }
    match app.sources.delete(&name) {
        Ok(()) => {
            tracing::info!(source = %name, "source deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Appends the sources' metrics to a Prometheus text exposition.
pub fn write_metrics(app: &AppState, out: &mut String) {
    let statuses = app.sources.statuses();
    let _ = writeln!(out, "# HELP rill_rtsp_sources RTSP sources by state.\n# TYPE rill_rtsp_sources gauge");
    let _ = writeln!(out, "rill_rtsp_sources{{state=\"idle\"}} {}", app.sources.idle());
    for state in [SourceState::Connecting, SourceState::Live, SourceState::Retrying] {
        let n = statuses.iter().filter(|s| s.state == state).count();
        let _ = writeln!(out, "rill_rtsp_sources{{state=\"{}\"}} {n}", state.as_str());
    }
    let reconnects: u64 =
        statuses.iter().map(|s| s.reconnects).sum::<u64>() + app.sources.removed_reconnects.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP rill_rtsp_reconnects_total Reconnection attempts of RTSP sources.\n# TYPE rill_rtsp_reconnects_total counter\nrill_rtsp_reconnects_total {reconnects}"
    );
}
