//! Uploads wired from the configuration: the tus upload store (`[vod]`), its expiry sweeper,
//! and the processing queue that turns complete uploads into videos.

use crate::config::Config;
use anyhow::{Context, Result};
use rill_vod::library::Library;
use rill_vod::upload::{UploadConfig, Uploads};
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
    Ok(uploads)
}
