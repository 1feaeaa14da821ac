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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{NewVideo, SegmentRow, VideoEnd, VideoStatus, Visibility};
    use crate::storage::FsStorage;

    const DAY_MS: i64 = 86_400_000;

    /// A ready video created `days_old` days before `now_ms`, of `size` bytes, with a file.
    async fn video(catalog: &Catalog, storage: &Arc<dyn Storage>, now_ms: i64, days_old: i64, size: i64) -> VideoId {
        let id = VideoId::generate();
        let created_at_ms = now_ms - days_old * DAY_MS;
        let new = NewVideo { id, title: "t", stream: "s", visibility: Visibility::Public, created_at_ms };
        catalog.create_video(&new).await.unwrap();
        let row = SegmentRow {
            track: "video".into(),
            sequence: 0,
            init_version: 0,
            discontinuity: false,
            start_ticks: 0,
            duration_ticks: 90_000,
            timescale: 90_000,
            size_bytes: size,
            wall_clock_ms: created_at_ms,
        };
        catalog.add_segment(id, &row, true).await.unwrap();
        let end = VideoEnd { status: VideoStatus::Ready, error: None, ended_at_ms: created_at_ms + 1000 };
        catalog.finish_video(id, &end).await.unwrap();
        storage.put(&format!("{id}/video/0.m4s"), b"segment").unwrap();
        id
    }

    #[tokio::test]
    async fn the_oldest_ready_videos_go_first_until_within_the_limits() {
        let dir = std::env::temp_dir().join(format!("rill-retention-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let catalog = Catalog::connect(&format!("sqlite://{}", dir.join("db").display())).await.unwrap();
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::open(dir.join("recordings")).unwrap());
        let now = SystemTime::now();
        let now_ms = crate::recorder::unix_ms(now);
        let ancient = video(&catalog, &storage, now_ms, 40, 100).await;
        let old = video(&catalog, &storage, now_ms, 20, 300).await;
        let middle = video(&catalog, &storage, now_ms, 10, 300).await;
        let new = video(&catalog, &storage, now_ms, 1, 300).await;

        let no_limits = sweep(&catalog, &storage, RetentionPolicy::default(), now).await.unwrap();
        assert!(no_limits.is_empty());

        let by_age = RetentionPolicy { max_age: Some(Duration::from_secs(30 * 86_400)), max_total_bytes: None };
        let swept = sweep(&catalog, &storage, by_age, now).await.unwrap();
        assert_eq!(swept.iter().map(|s| s.id).collect::<Vec<_>>(), vec![ancient]);
        assert!(catalog.video(ancient).await.unwrap().is_none());
        assert!(storage.list(ancient.as_str()).unwrap().is_empty(), "files deleted");

        let by_size = RetentionPolicy { max_age: None, max_total_bytes: Some(350) };
        let swept = sweep(&catalog, &storage, by_size, now).await.unwrap();
        assert_eq!(swept.iter().map(|s| s.id).collect::<Vec<_>>(), vec![old, middle]);
        assert!(catalog.video(new).await.unwrap().is_some());
        assert_eq!(catalog.total_size_bytes().await.unwrap(), 300);
        catalog.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
