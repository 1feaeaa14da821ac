//! The live ABR ladder's wiring: for each live stream that starts, whether it is transcoded
//! (`[transcode] enabled`, a `[[streams]]` entry's `transcode`/`ladder`, or a
//! `PATCH /api/v1/streams/<name>`) and with which rungs; each stream's ladder
//! (`rill_transcode::ladder`) runs until the stream ends, and its last status stays readable for
//! the API and metrics. Renditions publish back onto the Bus as `live/<name>/<rung>`, where the
//! packager finds them.

use crate::config::Config;
use dashmap::DashMap;
use rill_media::Bus;
use rill_media::StreamPath;
use rill_transcode::ladder::{run_ladder, LadderConfig, LadderSnapshot, LadderStatus, Rung};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct TranscodeStats {
    pub ladders_started: AtomicU64,
    pub ladders_failed: AtomicU64,
}

/// Every stream's ladder.
pub struct Transcoding {
    bus: Bus,
    enabled: bool,
    base: LadderConfig,
    overrides: DashMap<String, StreamTranscode>,
    ladders: DashMap<String, Ladder>,
    pub stats: TranscodeStats,
}

/// A stream's ladder: running, or the last one's final status.
struct Ladder {
    status: Arc<LadderStatus>,
    task: tokio::task::AbortHandle,
}

/// Why an override was refused.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error("unknown rung {0:?} (the ladder has {1})")]
    UnknownRung(String, String),
}

impl Transcoding {
    /// Transcodes the streams that start on `bus` from now on (and those already live).
    pub fn spawn(bus: Bus, config: &Config) -> Arc<Transcoding> {
        let t = &config.transcode;
        let base = LadderConfig {
            rungs: t.ladder.iter().map(|r| Rung::new(&r.name, r.width, r.height, r.video_kbps)).collect(),
            encoder: t.encoder.clone(),
            x264_speed_preset: t.speed_preset.clone(),
            max_lateness: Duration::from_millis(t.max_lateness_ms),
        };
        let overrides = config
            .streams
            .iter()
            .filter(|s| s.transcode.is_some() || s.ladder.is_some())
            .map(|s| (s.name.clone(), StreamTranscode { enabled: s.transcode, ladder: s.ladder.clone() }))
            .collect();
        let transcoding = Arc::new(Transcoding {
            bus: bus.clone(),
            enabled: t.enabled,
            base,
            overrides,
            ladders: DashMap::new(),
            stats: TranscodeStats::default(),
        });
        let this = transcoding.clone();
        tokio::spawn(async move {
            bus.for_each_started_stream(|path| {
                if path.is_source() {
                    this.start(path.name.as_str());
                }
            })
            .await
        });
        transcoding
    }

    /// The ladder of stream `name` as configured now; `None` when it is not transcoded.
    fn ladder_for(&self, name: &str) -> Option<LadderConfig> {
        let over = self.overrides.get(name).map(|o| o.clone()).unwrap_or_default();
        if !over.enabled.unwrap_or(self.enabled) {
            return None;
        }
        let mut config = self.base.clone();
        if let Some(names) = &over.ladder {
            config.rungs.retain(|r| names.contains(&r.name));
        }
        Some(config)
    }

    /// Starts stream `name`'s ladder (replacing a running one) if it is to be transcoded.
    fn start(self: &Arc<Self>, name: &str) {
        if let Some(running) = self.ladders.get(name) {
            if !running.task.is_finished() {
                return; // a lagged announcement, or the initial scan
            }
        }
        let Some(config) = self.ladder_for(name) else { return };
        let status = LadderStatus::new();
        let this = self.clone();
        let (task_status, task_name) = (status.clone(), name.to_string());
        self.stats.ladders_started.fetch_add(1, Ordering::Relaxed);
        let task = tokio::spawn(async move {
            let Ok(source) = StreamPath::live(&task_name) else { return };
            let result = run_ladder(this.bus.clone(), source, config, task_status).await;
            if result.is_err() {
                this.stats.ladders_failed.fetch_add(1, Ordering::Relaxed);
            }
        });
        self.ladders.insert(name.to_string(), Ladder { status, task: task.abort_handle() });
    }

    /// Stops stream `name`'s ladder (its renditions end).
    fn stop(&self, name: &str) {
        if let Some((_, ladder)) = self.ladders.remove(name) {
            ladder.task.abort();
        }
    }

    /// What stream `name`'s transcoding looks like now (`None`: never transcoded).
    pub fn snapshot(&self, name: &str) -> Option<LadderSnapshot> {
        self.ladders.get(name).map(|l| l.status.snapshot())
    }

    /// The override of stream `name` (config or API), and whether it is transcoded.
    pub fn setting(&self, name: &str) -> (StreamTranscode, bool) {
        let over = self.overrides.get(name).map(|o| o.clone()).unwrap_or_default();
        let enabled = over.enabled.unwrap_or(self.enabled);
        (over, enabled)
    }

    /// Sets stream `name`'s override and, if the stream is live, restarts its ladder with it.
    pub fn set_override(self: &Arc<Self>, name: &str, over: StreamTranscode) -> Result<(), OverrideError> {
        for rung in over.ladder.iter().flatten() {
            if !self.base.rungs.iter().any(|r| &r.name == rung) {
                let names: Vec<&str> = self.base.rungs.iter().map(|r| r.name.as_str()).collect();
                return Err(OverrideError::UnknownRung(rung.clone(), names.join(", ")));
            }
        }
        if self.setting(name).0 == over {
            return Ok(());
        }
        self.overrides.insert(name.to_string(), over);
        self.stop(name);
        if StreamPath::live(name).is_ok_and(|path| self.bus.contains(&path)) {
            tracing::info!(stream = name, "transcoding settings changed: restarting the ladder");
            self.start(name);
        }
        Ok(())
    }

    /// Rung counts by state over all ladders, for metrics.
    pub fn rung_states(&self) -> Vec<(&'static str, u64)> {
        let mut counts: Vec<(&'static str, u64)> = Vec::new();
        for ladder in self.ladders.iter() {
            for rung in ladder.status.snapshot().rungs {
                let state = rung.state.as_str();
                match counts.iter_mut().find(|(s, _)| *s == state) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((state, 1)),
                }
            }
        }
        counts
    }

    /// Ladders running now, for metrics.
    pub fn running(&self) -> usize {
        self.ladders.iter().filter(|l| !l.task.is_finished()).count()
    }
}
