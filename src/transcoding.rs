//! The live ABR ladder's wiring: [`rill_transcode::manager`] configured from `[transcode]` and
//! the `[[streams]]` entries' `transcode`/`ladder` overrides.

use crate::config::Config;
use rill_media::Bus;
use rill_transcode::ladder::{LadderConfig, Rung};
use rill_transcode::manager::{LadderManager, LadderPolicy, StreamTranscode};
use std::sync::Arc;
use std::time::Duration;

/// Which streams are transcoded, and how, as the config says.
pub fn policy(config: &Config) -> LadderPolicy {
    let t = &config.transcode;
    LadderPolicy {
        enabled: t.enabled,
        ladder: LadderConfig {
            rungs: t.ladder.iter().map(|r| Rung::new(&r.name, r.width, r.height, r.video_kbps)).collect(),
            encoder: t.encoder.clone(),
            x264_speed_preset: t.speed_preset.clone(),
            max_lateness: Duration::from_millis(t.max_lateness_ms),
            encode_delay: Duration::ZERO,
        },
        overrides: config
            .streams
            .iter()
            .filter(|s| s.transcode.is_some() || s.ladder.is_some())
            .map(|s| (s.name.clone(), StreamTranscode { enabled: s.transcode, ladder: s.ladder.clone() }))
            .collect(),
    }
}

/// Transcodes the streams that start on `bus` from now on (and those already live).
pub fn spawn(bus: Bus, config: &Config) -> Arc<LadderManager> {
    LadderManager::spawn(bus, policy(config))
}
