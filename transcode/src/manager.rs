//! Which live streams get an ABR ladder, and the lifecycle of those ladders.
//!
//! [`LadderPolicy`] is the pure decision: `[transcode] enabled`, per-stream overrides (from the
//! config or `PATCH /api/v1/streams/<name>`), and which rungs each stream gets.
//! [`LadderManager`] applies it to the Bus: a ladder starts with each live stream it covers and
//! runs until the stream ends (an override change restarts it); the last status of each stays
//! readable as a [`TranscodeView`] for the API, and as `rill_transcode_*` metrics.
//! Renditions publish back onto the Bus as `live/<name>/<rung>`, where the packager finds them.

use crate::ladder::{run_ladder, LadderConfig, LadderSnapshot, LadderStatus, RungSnapshot};
use crate::TranscodeError;
use rill_media::metrics::{count, Exposition, Kind};
use rill_media::Bus;
use rill_media::StreamPath;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// How one stream is transcoded, where it differs from `[transcode]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamTranscode {
    /// Overrides `[transcode] enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Rung names of `[[transcode.ladder]]`; all of them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<Vec<String>>,
}

/// Why an override was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OverrideError {
    #[error("unknown rung {0:?} (the ladder has {1})")]
    UnknownRung(String, String),
}

/// Which streams are transcoded, and with which rungs (no I/O).
#[derive(Clone, Debug, Default)]
pub struct LadderPolicy {
    /// `[transcode] enabled`: whether a stream without an override is transcoded.
    pub enabled: bool,
    /// The full ladder (`[[transcode.ladder]]`) and the encoder settings.
    pub ladder: LadderConfig,
    /// Per-stream overrides by stream name.
    pub overrides: HashMap<String, StreamTranscode>,
}

impl LadderPolicy {
    /// The override of stream `name` (empty if none), and whether the stream is transcoded.
    pub fn setting(&self, name: &str) -> (StreamTranscode, bool) {
        let over = self.overrides.get(name).cloned().unwrap_or_default();
        let enabled = over.enabled.unwrap_or(self.enabled);
        (over, enabled)
    }

    /// The ladder of stream `name`; `None` when it is not transcoded.
    pub fn ladder_for(&self, name: &str) -> Option<LadderConfig> {
        let (over, enabled) = self.setting(name);
        if !enabled {
            return None;
        }
        let mut config = self.ladder.clone();
        if let Some(names) = &over.ladder {
            config.rungs.retain(|r| names.contains(&r.name));
        }
        Some(config)
    }

    /// Refuses an override that names a rung the ladder does not have.
    pub fn check(&self, over: &StreamTranscode) -> Result<(), OverrideError> {
        for rung in over.ladder.iter().flatten() {
            if !self.ladder.rungs.iter().any(|r| &r.name == rung) {
                let names: Vec<&str> = self.ladder.rungs.iter().map(|r| r.name.as_str()).collect();
                return Err(OverrideError::UnknownRung(rung.clone(), names.join(", ")));
            }
        }
        Ok(())
    }

    /// Sets stream `name`'s override. True when it changed (a running ladder must restart).
    pub fn set_override(&mut self, name: &str, over: StreamTranscode) -> Result<bool, OverrideError> {
        self.check(&over)?;
        if self.setting(name).0 == over {
            return Ok(false);
        }
        self.overrides.insert(name.to_string(), over);
        Ok(true)
    }
}

/// A running ladder: resolves when it ends (`Err` when it failed).
pub type LadderTask = Pin<Box<dyn Future<Output = Result<(), TranscodeError>> + Send>>;

/// Runs the ladder of a source path with a config, updating the status as it goes:
/// [`run_ladder`] in the server; tests pass a fake.
pub type LadderRunner = Arc<dyn Fn(Bus, StreamPath, LadderConfig, Arc<LadderStatus>) -> LadderTask + Send + Sync>;

/// The runner that transcodes with GStreamer.
pub fn gstreamer_runner() -> LadderRunner {
    Arc::new(|bus, path, config, status| Box::pin(run_ladder(bus, path, config, status)))
}

/// Counters for metrics.
#[derive(Debug, Default)]
struct LadderStats {
    ladders_started: AtomicU64,
    ladders_failed: AtomicU64,
}

/// A stream's ladder: running, or the last one's final status.
struct Ladder {
    status: Arc<LadderStatus>,
    task: tokio::task::AbortHandle,
}

/// Every live stream's ladder.
pub struct LadderManager {
    bus: Bus,
    policy: Mutex<LadderPolicy>,
    ladders: Mutex<HashMap<String, Ladder>>,
    runner: LadderRunner,
    stats: LadderStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LadderManager {
    /// Transcodes with GStreamer the streams that start on `bus` from now on (and those live
    /// now), as `policy` says. Must run inside the tokio runtime.
    pub fn spawn(bus: Bus, policy: LadderPolicy) -> Arc<LadderManager> {
        Self::spawn_with_runner(bus, policy, gstreamer_runner())
    }

    /// [`LadderManager::spawn`] with another way to run a ladder.
    pub fn spawn_with_runner(bus: Bus, policy: LadderPolicy, runner: LadderRunner) -> Arc<LadderManager> {
        let manager = Arc::new(LadderManager {
            bus: bus.clone(),
            policy: Mutex::new(policy),
            ladders: Mutex::new(HashMap::new()),
            runner,
            stats: LadderStats::default(),
        });
        let this = manager.clone();
        tokio::spawn(async move { bus.for_each_started_stream(|path| this.on_stream_started(path)).await });
        manager
    }

    /// A Bus stream started: a live stream (not a rendition) gets its ladder.
    fn on_stream_started(self: &Arc<Self>, path: &StreamPath) {
        if path.is_source() {
            self.start(path.name.as_str());
        }
    }

    /// Starts stream `name`'s ladder (replacing a finished one) if it is to be transcoded.
    fn start(self: &Arc<Self>, name: &str) {
        let mut ladders = lock(&self.ladders);
        if ladders.get(name).is_some_and(|l| !l.task.is_finished()) {
            return; // a lagged announcement, or the initial scan
        }
        let Ok(path) = StreamPath::live(name) else { return };
        let Some(config) = lock(&self.policy).ladder_for(name) else { return };
        let status = LadderStatus::new();
        self.stats.ladders_started.fetch_add(1, Ordering::Relaxed);
        let run = (self.runner)(self.bus.clone(), path, config, status.clone());
        let this = self.clone();
        let task = tokio::spawn(async move {
            if run.await.is_err() {
                this.stats.ladders_failed.fetch_add(1, Ordering::Relaxed);
            }
        });
        ladders.insert(name.to_string(), Ladder { status, task: task.abort_handle() });
    }

    /// Stops stream `name`'s ladder (its renditions end).
    fn stop(&self, name: &str) {
        if let Some(ladder) = lock(&self.ladders).remove(name) {
            ladder.task.abort();
        }
    }

    /// What stream `name`'s ladder looks like now (`None`: never transcoded).
    pub fn snapshot(&self, name: &str) -> Option<LadderSnapshot> {
        lock(&self.ladders).get(name).map(|l| l.status.snapshot())
    }

    /// The override of stream `name` (config or API), and whether it is transcoded.
    pub fn setting(&self, name: &str) -> (StreamTranscode, bool) {
        lock(&self.policy).setting(name)
    }

    /// Sets stream `name`'s override and, if it changed and the stream is live, restarts its
    /// ladder with it.
    pub fn set_override(self: &Arc<Self>, name: &str, over: StreamTranscode) -> Result<(), OverrideError> {
        if !lock(&self.policy).set_override(name, over)? {
            return Ok(());
        }
        self.stop(name);
        if StreamPath::live(name).is_ok_and(|path| self.bus.contains(&path)) {
            tracing::info!(stream = name, "transcoding settings changed: restarting the ladder");
            self.start(name);
        }
        Ok(())
    }

    /// Stream `name`'s transcoding as the API shows it; `hls_url` gives a rendition's media
    /// playlist URL from its rung name.
    pub fn view(&self, name: &str, hls_url: impl Fn(&str) -> String) -> TranscodeView {
        let (setting, enabled) = self.setting(name);
        TranscodeView::new(setting, enabled, self.snapshot(name), hls_url)
    }

    /// Ladders running now.
    pub fn running(&self) -> usize {
        lock(&self.ladders).values().filter(|l| !l.task.is_finished()).count()
    }

    /// Rung counts by state over all ladders kept (running or ended).
    pub fn rung_states(&self) -> Vec<(&'static str, u64)> {
        let snapshots: Vec<LadderSnapshot> = lock(&self.ladders).values().map(|l| l.status.snapshot()).collect();
        count_rung_states(&snapshots)
    }

    /// The `rill_transcode_*` metrics.
    pub fn write_metrics(&self, out: &mut Exposition) {
        out.sample("rill_transcode_ladders", Kind::Gauge, "Live ABR ladders running now.", self.running() as f64);
        let help =
            "Ladders started, and those that failed (GStreamer error, unsupported input, or every rung dropped).";
        let total = "rill_transcode_ladders_total";
        out.labelled(total, Kind::Counter, help, &[("outcome", "started")], count(&self.stats.ladders_started));
        out.labelled(total, Kind::Counter, help, &[("outcome", "failed")], count(&self.stats.ladders_failed));
        let help = "Renditions of the ladders kept (running or ended), by state: dropped_overload means the machine could not keep real time.";
        out.declare("rill_transcode_renditions", Kind::Gauge, help);
        for (state, n) in self.rung_states() {
            out.labelled("rill_transcode_renditions", Kind::Gauge, help, &[("state", state)], n as f64);
        }
    }
}

/// Rung counts by state, in order of first appearance.
pub fn count_rung_states(ladders: &[LadderSnapshot]) -> Vec<(&'static str, u64)> {
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    for rung in ladders.iter().flat_map(|l| &l.rungs) {
        let state = rung.state.as_str();
        match counts.iter_mut().find(|(s, _)| *s == state) {
            Some((_, n)) => *n += 1,
            None => counts.push((state, 1)),
        }
    }
    counts
}

/// A stream's transcoding as `GET /api/v1/streams/<name>` shows it (its `transcode` object).
#[derive(Clone, Debug, Serialize)]
pub struct TranscodeView {
    /// Whether the stream is transcoded (its override, else `[transcode] enabled`).
    pub enabled: bool,
    /// The rungs its override names (`null`: all).
    pub ladder: Option<Vec<String>>,
    /// Its ladder's state, once it has had one.
    #[serde(flatten)]
    pub ladder_state: Option<LadderView>,
}

/// The state of a stream's (running or last) ladder.
#[derive(Clone, Debug, Serialize)]
pub struct LadderView {
    pub renditions: Vec<RenditionView>,
    pub input_frames: u64,
    pub input_dropped: u64,
    pub error: Option<String>,
}

/// A rung of the ladder, with where to play it.
#[derive(Clone, Debug, Serialize)]
pub struct RenditionView {
    #[serde(flatten)]
    pub rung: RungSnapshot,
    pub hls_url: String,
}

impl TranscodeView {
    pub fn new(
        setting: StreamTranscode,
        enabled: bool,
        ladder: Option<LadderSnapshot>,
        hls_url: impl Fn(&str) -> String,
    ) -> TranscodeView {
        let ladder_state = ladder.map(|l| LadderView {
            renditions: l.rungs.into_iter().map(|rung| RenditionView { hls_url: hls_url(&rung.name), rung }).collect(),
            input_frames: l.input_frames,
            input_dropped: l.input_dropped,
            error: l.error,
        });
        TranscodeView { enabled, ladder: setting.ladder, ladder_state }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::{Rung, RungState};
    use rill_media::PublisherInfo;
    use serde_json::json;
    use std::time::Duration;

    fn policy(enabled: bool) -> LadderPolicy {
        LadderPolicy {
            enabled,
            ladder: LadderConfig {
                rungs: vec![Rung::new("720p", 1280, 720, 2500), Rung::new("360p", 640, 360, 800)],
                ..LadderConfig::default()
            },
            overrides: HashMap::new(),
        }
    }

    fn rung_names(config: &LadderConfig) -> Vec<&str> {
        config.rungs.iter().map(|r| r.name.as_str()).collect()
    }

    fn over(enabled: Option<bool>, ladder: Option<&[&str]>) -> StreamTranscode {
        StreamTranscode { enabled, ladder: ladder.map(|l| l.iter().map(|s| s.to_string()).collect()) }
    }

    #[test]
    fn the_global_switch_applies_where_no_override_says_otherwise() {
        let mut p = policy(false);
        assert!(p.ladder_for("cam").is_none());
        p.overrides.insert("cam".into(), over(Some(true), None));
        assert_eq!(rung_names(&p.ladder_for("cam").unwrap()), ["720p", "360p"]);

        let mut p = policy(true);
        assert_eq!(p.setting("any"), (StreamTranscode::default(), true));
        p.overrides.insert("quiet".into(), over(Some(false), None));
        assert!(p.ladder_for("quiet").is_none());
        assert!(p.ladder_for("other").is_some());
    }

    #[test]
    fn an_override_picks_rungs_by_name() {
        let mut p = policy(true);
        p.overrides.insert("cam".into(), over(None, Some(&["360p"])));
        assert_eq!(rung_names(&p.ladder_for("cam").unwrap()), ["360p"]);
        assert_eq!(p.setting("cam"), (over(None, Some(&["360p"])), true));
    }

    #[test]
    fn an_override_naming_an_unknown_rung_is_refused() {
        let mut p = policy(true);
        assert_eq!(
            p.set_override("cam", over(None, Some(&["1080p"]))),
            Err(OverrideError::UnknownRung("1080p".into(), "720p, 360p".into()))
        );
        assert!(p.overrides.is_empty());
        assert_eq!(
            OverrideError::UnknownRung("1080p".into(), "720p, 360p".into()).to_string(),
            "unknown rung \"1080p\" (the ladder has 720p, 360p)"
        );
    }

    #[test]
    fn only_a_changed_override_asks_for_a_restart() {
        let mut p = policy(true);
        assert_eq!(p.set_override("cam", StreamTranscode::default()), Ok(false));
        assert_eq!(p.set_override("cam", over(Some(false), None)), Ok(true));
        assert_eq!(p.set_override("cam", over(Some(false), None)), Ok(false));
        assert_eq!(p.set_override("cam", over(None, None)), Ok(true));
    }

    #[test]
    fn overrides_deserialize_strictly() {
        let o: StreamTranscode = serde_json::from_str(r#"{"enabled": true, "ladder": ["360p"]}"#).unwrap();
        assert_eq!(o, over(Some(true), Some(&["360p"])));
        assert!(serde_json::from_str::<StreamTranscode>(r#"{"enable": true}"#).is_err());
    }

    fn rung_snapshot(name: &str, state: RungState) -> RungSnapshot {
        RungSnapshot {
            name: name.into(),
            path: format!("live/cam/{name}").parse().unwrap(),
            width: 640,
            height: 360,
            video_kbps: 800,
            state,
            fps: 25.0,
            lateness_ms: 40,
            latency_ms: 120,
            frames: 250,
        }
    }

    #[test]
    fn the_view_keeps_the_api_shape() {
        let hls = |rung: &str| format!("http://h:8080/live/cam/{rung}/video/media.m3u8");
        let before = TranscodeView::new(StreamTranscode::default(), true, None, hls);
        assert_eq!(serde_json::to_value(&before).unwrap(), json!({ "enabled": true, "ladder": null }));

        let ladder = LadderSnapshot {
            rungs: vec![rung_snapshot("360p", RungState::Running)],
            input_frames: 300,
            input_dropped: 2,
            error: None,
        };
        let view = TranscodeView::new(over(None, Some(&["360p"])), true, Some(ladder), hls);
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            json!({
                "enabled": true,
                "ladder": ["360p"],
                "renditions": [{
                    "name": "360p", "path": "live/cam/360p", "width": 640, "height": 360,
                    "video_kbps": 800, "state": "running", "fps": 25.0, "lateness_ms": 40,
                    "latency_ms": 120, "frames": 250,
                    "hls_url": "http://h:8080/live/cam/360p/video/media.m3u8",
                }],
                "input_frames": 300,
                "input_dropped": 2,
                "error": null,
            })
        );
    }

    #[test]
    fn rung_states_are_counted_over_all_ladders() {
        let ladder = |states: &[RungState]| LadderSnapshot {
            rungs: states.iter().map(|s| rung_snapshot("r", *s)).collect(),
            ..LadderSnapshot::default()
        };
        let counts = count_rung_states(&[
            ladder(&[RungState::Running, RungState::DroppedOverload]),
            ladder(&[RungState::Running]),
        ]);
        assert_eq!(counts, [("running", 2), ("dropped_overload", 1)]);
    }

    /// Starts and stops of the fake runner, by source path.
    #[derive(Default)]
    struct Record {
        events: Mutex<Vec<String>>,
    }

    /// A runner that records each start, runs until aborted (recording the stop), or fails at
    /// once for paths containing "bad".
    fn fake_runner(record: Arc<Record>) -> LadderRunner {
        struct Stopped(Arc<Record>, String);
        impl Drop for Stopped {
            fn drop(&mut self) {
                lock(&self.0.events).push(format!("stop {}", self.1));
            }
        }
        Arc::new(move |_bus, path, config, _status| {
            let record = record.clone();
            lock(&record.events).push(format!("start {path} {}", rung_names(&config).join(",")));
            let path = path.to_string();
            Box::pin(async move {
                let _stopped = Stopped(record, path.clone());
                if path.contains("bad") {
                    return Err(TranscodeError::Overloaded { stream: path });
                }
                std::future::pending().await
            })
        })
    }

    fn events(record: &Record) -> Vec<String> {
        lock(&record.events).clone()
    }

    /// Lets spawned tasks run.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    fn publisher(name: &str) -> PublisherInfo {
        PublisherInfo { protocol: "test", peer: name.to_string() }
    }

    fn p(path: &str) -> StreamPath {
        path.parse().unwrap()
    }

    #[tokio::test]
    async fn ladders_follow_live_streams_and_restart_on_a_changed_override() {
        let bus = Bus::new(Default::default());
        let record = Arc::new(Record::default());
        let _live_before = bus.publish(&p("live/early"), publisher("early")).unwrap();
        let manager = LadderManager::spawn_with_runner(bus.clone(), policy(true), fake_runner(record.clone()));
        settle().await;
        assert_eq!(events(&record), ["start live/early 720p,360p"]);

        let _cam = bus.publish(&p("live/cam"), publisher("cam")).unwrap();
        let _rendition = bus.publish(&p("live/cam/360p"), publisher("ladder")).unwrap();
        settle().await;
        assert_eq!(events(&record)[1..], ["start live/cam 720p,360p"]);
        assert_eq!(manager.running(), 2);

        manager.set_override("cam", over(None, Some(&["360p"]))).unwrap();
        manager.set_override("cam", over(None, Some(&["360p"]))).unwrap(); // unchanged: no restart
        settle().await;
        // The old task is aborted (its drop runs on the runtime) as the new one starts.
        let mut restart = events(&record)[2..].to_vec();
        restart.sort();
        assert_eq!(restart, ["start live/cam 360p", "stop live/cam"]);

        manager.set_override("offline", over(Some(false), None)).unwrap(); // not live: nothing runs
        assert!(manager.set_override("cam", over(None, Some(&["4k"]))).is_err());
        settle().await;
        assert_eq!(events(&record).len(), 4);
        assert_eq!(manager.setting("offline"), (over(Some(false), None), false));
        assert!(manager.snapshot("cam").is_some() && manager.snapshot("offline").is_none());
    }

    #[tokio::test]
    async fn failures_are_counted_and_the_metrics_keep_their_names() {
        let bus = Bus::new(Default::default());
        let record = Arc::new(Record::default());
        let mut bad_only = policy(false);
        bad_only.overrides.insert("bad".into(), over(Some(true), None));
        let manager = LadderManager::spawn_with_runner(bus.clone(), bad_only, fake_runner(record.clone()));
        settle().await;
        let _off = bus.publish(&p("live/off"), publisher("off")).unwrap();
        let _bad = bus.publish(&p("live/bad"), publisher("bad")).unwrap();
        settle().await;
        assert_eq!(events(&record), ["start live/bad 720p,360p", "stop live/bad"]);
        let mut exposition = rill_media::metrics::Exposition::new();
        manager.write_metrics(&mut exposition);
        assert_eq!(
            exposition.render(),
            "# HELP rill_transcode_ladders Live ABR ladders running now.\n\
             # TYPE rill_transcode_ladders gauge\n\
             rill_transcode_ladders 0\n\
             # HELP rill_transcode_ladders_total Ladders started, and those that failed (GStreamer error, unsupported input, or every rung dropped).\n\
             # TYPE rill_transcode_ladders_total counter\n\
             rill_transcode_ladders_total{outcome=\"started\"} 1\n\
             rill_transcode_ladders_total{outcome=\"failed\"} 1\n\
             # HELP rill_transcode_renditions Renditions of the ladders kept (running or ended), by state: dropped_overload means the machine could not keep real time.\n\
             # TYPE rill_transcode_renditions gauge\n"
        );
    }
}
