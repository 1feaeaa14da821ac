//! The video library as the HTTP layer sees it: the catalog, the storage and a small cache of
//! segment indexes, so a player's playlist and segment requests do not each read every segment
//! row. A cached index is revalidated against the video's row alone (one primary-key read) and
//! reloaded only when that row changed: on every request while the video is being recorded
//! (each indexed segment changes its size), at most every [`FINISHED_RECHECK`] once it has
//! ended (so edits made through another server sharing the database show up). Download layouts
//! (`crate::download`) are cached here too, keyed by the video row's `updated_at`.

use crate::catalog::{Catalog, CatalogError, VideoStatus};
use crate::download::Download;
use crate::manifest::VideoIndex;
use crate::recorder::RecordError;
use crate::storage::{self, Storage};
use crate::VideoId;
use bytes::Bytes;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a finished video's cached index is used without looking at its row.
pub const FINISHED_RECHECK: Duration = Duration::from_secs(5);
/// Indexes kept in memory.
const CACHED_INDEXES: usize = 256;

pub struct Library {
    pub catalog: Arc<Catalog>,
    pub storage: Arc<dyn Storage>,
    indexes: Mutex<HashMap<VideoId, (Instant, Arc<VideoIndex>)>>,
    /// Download layouts by (video, rendition), with the video row's `updated_at` they were made at.
    downloads: Mutex<HashMap<DownloadKey, (i64, Arc<Download>)>>,
}

/// A download layout's key: the video and the rendition.
pub type DownloadKey = (VideoId, String);

/// Download layouts kept in memory (a long video's is a few MB of sample tables).
const CACHED_DOWNLOADS: usize = 16;

impl Library {
    pub fn new(catalog: Arc<Catalog>, storage: Arc<dyn Storage>) -> Library {
        Library { catalog, storage, indexes: Mutex::new(HashMap::new()), downloads: Mutex::new(HashMap::new()) }
    }

    /// The index of video `id`, or `None` if there is no such video.
    pub async fn index(&self, id: VideoId) -> Result<Option<Arc<VideoIndex>>, CatalogError> {
        let cached = self.lock().get(&id).cloned();
        if let Some((checked, index)) = cached {
            let trusted_for =
                if index.video.status == VideoStatus::Recording { Duration::ZERO } else { FINISHED_RECHECK };
            if checked.elapsed() < trusted_for {
                return Ok(Some(index));
            }
            match self.catalog.video(id).await? {
                Some(video) if video == index.video => {
                    self.lock().insert(id, (Instant::now(), index.clone()));
                    return Ok(Some(index));
                }
                Some(_) => {} // changed: reload below
                None => {
                    self.lock().remove(&id);
                    return Ok(None);
                }
            }
        }
        let Some(index) = VideoIndex::load(&self.catalog, id).await? else {
            self.lock().remove(&id);
            return Ok(None);
        };
        let index = Arc::new(index);
        let mut indexes = self.lock();
        if indexes.len() >= CACHED_INDEXES && !indexes.contains_key(&id) {
            // Drop the least recently checked entry: cheap, and good enough for a working set
            // of popular videos.
            if let Some(oldest) = indexes.iter().min_by_key(|(_, (at, _))| *at).map(|(id, _)| *id) {
                indexes.remove(&oldest);
            }
        }
        indexes.insert(id, (Instant::now(), index.clone()));
        Ok(Some(index))
    }

    /// The cached download layout of `key` made while the video's row was at `updated_at_ms`.
    pub fn cached_download(&self, key: &DownloadKey, updated_at_ms: i64) -> Option<Arc<Download>> {
        let downloads = rill_media::sync::lock(&self.downloads);
        downloads.get(key).filter(|(at, _)| *at == updated_at_ms).map(|(_, d)| d.clone())
    }

    /// Keeps a download layout (dropping an arbitrary one past [`CACHED_DOWNLOADS`]).
    pub fn cache_download(&self, key: DownloadKey, updated_at_ms: i64, download: Arc<Download>) {
        let mut downloads = rill_media::sync::lock(&self.downloads);
        if downloads.len() >= CACHED_DOWNLOADS && !downloads.contains_key(&key) {
            if let Some(evicted) = downloads.keys().next().cloned() {
                downloads.remove(&evicted);
            }
        }
        downloads.insert(key, (updated_at_ms, download));
    }

    /// Forgets the cached index of `id` (after an edit).
    pub fn invalidate(&self, id: VideoId) {
        self.lock().remove(&id);
    }

    /// Deletes video `id`: files, then catalog rows.
    pub async fn delete(&self, id: VideoId) -> Result<bool, RecordError> {
        let deleted = crate::retention::delete_video(&self.catalog, &self.storage, id).await;
        self.invalidate(id);
        deleted
    }

    /// Bytes `range` of a stored object.
    pub async fn read(&self, key: String, range: Range<u64>) -> std::io::Result<Bytes> {
        storage::run(&self.storage, move |s| s.read(&key, range)).await
    }

    /// The size of a stored object.
    pub async fn size(&self, key: String) -> std::io::Result<u64> {
        storage::run(&self.storage, move |s| s.size(&key)).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VideoId, (Instant, Arc<VideoIndex>)>> {
        rill_media::sync::lock(&self.indexes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{NewVideo, SegmentRow, VideoEnd, Visibility};
    use crate::storage::FsStorage;

    #[tokio::test]
    async fn a_cached_index_follows_the_recording_and_its_end_at_once() {
        let dir = std::env::temp_dir().join(format!("rill-library-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let catalog = Arc::new(Catalog::connect(&format!("sqlite://{}", dir.join("db").display())).await.unwrap());
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::open(dir.join("recordings")).unwrap());
        let library = Library::new(catalog.clone(), storage);
        let id = VideoId::generate();
        let new = NewVideo { id, title: "t", stream: "s", visibility: Visibility::Public, created_at_ms: 1 };
        catalog.create_video(&new).await.unwrap();
        catalog.add_init(id, "video", 0, r#"{"kind":"video","codec":"h264","codecs":null,"width":null,"height":null,"frame_rate":null,"sample_rate":null,"channels":null,"timescale":90000}"#).await.unwrap();
        let segment = |sequence| SegmentRow {
            track: "video".into(),
            sequence,
            init_version: 0,
            discontinuity: false,
            start_ticks: sequence * 180_000,
            duration_ticks: 180_000,
            timescale: 90_000,
            size_bytes: 1000,
            wall_clock_ms: 1,
        };
        catalog.add_segment(id, &segment(0), true).await.unwrap();
        assert_eq!(library.index(id).await.unwrap().unwrap().tracks[0].segments.len(), 1);
        catalog.add_segment(id, &segment(1), true).await.unwrap();
        assert_eq!(
            library.index(id).await.unwrap().unwrap().tracks[0].segments.len(),
            2,
            "a new segment shows at once"
        );
        catalog.finish_video(id, &VideoEnd { status: VideoStatus::Ready, error: None, ended_at_ms: 2 }).await.unwrap();
        assert!(!library.index(id).await.unwrap().unwrap().is_live(), "the end shows at once");
        assert!(library.delete(id).await.unwrap());
        assert!(library.index(id).await.unwrap().is_none());
        catalog.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
