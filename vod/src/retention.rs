//! Deleting videos: one at a time (the API) and by policy (the sweeper), oldest ready videos
//! first once they pass `[record] max_age_days` or while the recordings exceed
//! `[record] max_total_gb`. Files go first, then the catalog rows, so a crash in between leaves
//! a row whose files are gone (deleted again next time), never files no row points to.

use crate::catalog::Catalog;
use crate::recorder::RecordError;
use crate::storage::{self, Storage};
use crate::VideoId;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Limits on what is kept. `None` is no limit.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetentionPolicy {
    pub max_age: Option<Duration>,
    pub max_total_bytes: Option<u64>,
}

/// Deletes video `id` (files and rows). `false` if it did not exist.
pub async fn delete_video(catalog: &Catalog, storage: &Arc<dyn Storage>, id: VideoId) -> Result<bool, RecordError> {
    let prefix = id.to_string();
    storage::run(storage, move |s| s.remove_all(&prefix)).await?;
    Ok(catalog.delete(id).await?)
}

/// A video the sweeper removed, and why.
#[derive(Debug, Clone)]
pub struct Swept {
    pub id: VideoId,
    pub size_bytes: i64,
    pub reason: &'static str,
}

/// Deletes the oldest ready videos past the policy's limits.
pub async fn sweep(
    catalog: &Catalog,
    storage: &Arc<dyn Storage>,
    policy: RetentionPolicy,
    now: SystemTime,
) -> Result<Vec<Swept>, RecordError> {
    if policy.max_age.is_none() && policy.max_total_bytes.is_none() {
        return Ok(Vec::new());
    }
    let oldest_allowed_ms = policy.max_age.map(|age| crate::recorder::unix_ms(now.checked_sub(age).unwrap_or(now)));
    let mut total = catalog.total_size_bytes().await?;
    let mut swept = Vec::new();
    'batches: loop {
        let candidates = catalog.ready_oldest_first(500).await?;
        if candidates.is_empty() {
            break;
        }
        for (id, created_at_ms, size_bytes) in candidates {
            let reason = if oldest_allowed_ms.is_some_and(|oldest| created_at_ms < oldest) {
                "older than [record] max_age_days"
            } else if policy.max_total_bytes.is_some_and(|max| total > max as i64) {
                "recordings over [record] max_total_gb"
            } else {
                break 'batches;
            };
            delete_video(catalog, storage, id).await?;
            total -= size_bytes;
            tracing::info!(video = %id, size_bytes, reason, "retention: deleted video");
            swept.push(Swept { id, size_bytes, reason });
        }
    }
    Ok(swept)
}

/// Runs [`sweep`] every `every` until the runtime stops.
pub fn spawn_sweeper(catalog: Arc<Catalog>, storage: Arc<dyn Storage>, policy: RetentionPolicy, every: Duration) {
    if policy.max_age.is_none() && policy.max_total_bytes.is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = sweep(&catalog, &storage, policy, SystemTime::now()).await {
                tracing::error!(error = %e, "retention sweep failed; retrying at the next interval");
            }
        }
    });
}
