//! Uploads wired from the configuration: the tus upload store (`[vod]`), its expiry sweeper,
//! and the processing queue that turns complete uploads into videos.

use crate::config::Config;
use crate::processing::UploadProcessor;
use crate::thumbnailer::{thumbnailer, THUMBNAIL_WIDTH};
use anyhow::{Context, Result};
use rill_transcode::ladder::Rung;
use rill_vod::library::Library;
use rill_vod::upload::{Process, UploadConfig, Uploads};
use std::sync::Arc;
use std::time::Duration;

/// Opens the upload store and starts its sweeper and processing.
pub fn start(config: &Config, library: &Library) -> Result<Arc<Uploads>> {
    let dir = config.vod.upload_dir(&config.server);
    let expiry = Duration::from_secs_f64(config.vod.upload_expiry_h * 3600.0);
    let uploads = Arc::new(
        Uploads::open(
            library.catalog.clone(),
            dir.clone(),
            UploadConfig {
                max_bytes: config.vod.max_upload_bytes(),
                expiry,
                default_visibility: config.record.visibility,
            },
        )
        .with_context(|| format!("opening the uploads directory {}", dir.display()))?,
    );
    let sweep_every = (expiry / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    tokio::spawn(uploads.clone().run_expiry(sweep_every));
    match std::env::current_exe() {
        Ok(exe) => {
            let processor: Arc<dyn Process> = Arc::new(UploadProcessor {
                exe,
                recordings_dir: config.record.dir(&config.server),
                recordings: library.storage.clone(),
                rungs: config
                    .transcode
                    .ladder
                    .iter()
                    .map(|r| Rung::new(&r.name, r.width, r.height, r.video_kbps))
                    .collect(),
                speed_preset: config.transcode.speed_preset.clone(),
                thumbnailer: thumbnailer(THUMBNAIL_WIDTH),
                storyboarder: crate::storyboard::Storyboarder::new(library.storage.clone()),
            });
            for _ in 0..config.vod.processing_jobs {
                tokio::spawn(uploads.clone().run_processing(processor.clone()));
            }
        }
        Err(error) => tracing::error!(%error, "cannot find the rill executable: uploads will not be processed"),
    }
    Ok(uploads)
}
