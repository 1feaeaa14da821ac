//! RTSP sources (cameras Rill pulls from): [`rill_ingest::rtsp::manager`] configured from
//! `[rtsp]` and `[[sources]]`, fed with the packagers' "last watched". The `/api/v1/sources`
//! routes are in the HTTP layer (`http::api::sources`).

use crate::config::Config;
use rill_ingest::rtsp::manager::{Cameras, CamerasConfig, StartError};
use rill_ingest::rtsp::RtspSettings;
use rill_media::Bus;
use rill_relay::packager::Packagers;
use std::sync::Arc;
use std::time::Duration;

/// The manager's settings, as the config says.
pub fn cameras_config(config: &Config) -> CamerasConfig {
    let r = &config.rtsp;
    let timeout = Duration::from_secs(r.timeout_s);
    CamerasConfig {
        settings: RtspSettings {
            connect_timeout: timeout,
            stall_timeout: timeout,
            retry_min: Duration::from_secs_f64(r.retry_min_s),
            retry_max: Duration::from_secs_f64(r.retry_max_s),
            ..RtspSettings::default()
        },
        store: config.server.data_dir.join("sources.json"),
        on_demand_idle: Duration::from_secs(r.on_demand_idle_s),
        sources: config.sources.clone(),
    }
}

/// Starts the config's and the API's sources; on-demand ones count LL-HLS/DASH requests to
/// the packagers as watching. Must run inside the tokio runtime.
pub fn start(config: &Config, bus: Bus, packagers: Arc<Packagers>) -> Result<Arc<Cameras>, StartError> {
    let cameras = Arc::new(Cameras::start(bus, cameras_config(config))?);
    cameras.serve_on_demand(move |name: &str| packagers.get(name).map(|p| p.unwatched_for()));
    Ok(cameras)
}
