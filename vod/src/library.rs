//! The video library as the HTTP layer sees it: the catalog, the storage and a small cache of
//! segment indexes, so a player's playlist and segment requests do not each query the
//! database. A finished video's index is kept until it is changed or deleted; a recording's is
//! refreshed at most every [`LIVE_INDEX_TTL`].

use crate::catalog::{Catalog, CatalogError, VideoStatus};
use crate::manifest::VideoIndex;
use crate::recorder::RecordError;
use crate::storage::{self, Storage};
use crate::VideoId;
use bytes::Bytes;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How stale the index of a video being recorded may be.
pub const LIVE_INDEX_TTL: Duration = Duration::from_millis(500);
/// Indexes kept in memory.
const CACHED_INDEXES: usize = 256;

pub struct Library {
    pub catalog: Arc<Catalog>,
    pub storage: Arc<dyn Storage>,
    indexes: Mutex<HashMap<VideoId, (Instant, Arc<VideoIndex>)>>,
}

impl Library {
    pub fn new(catalog: Arc<Catalog>, storage: Arc<dyn Storage>) -> Library {
        Library { catalog, storage, indexes: Mutex::new(HashMap::new()) }
    }

    /// The index of video `id`, or `None` if there is no such video.
    pub async fn index(&self, id: VideoId) -> Result<Option<Arc<VideoIndex>>, CatalogError> {
        if let Some((fetched, index)) = self.lock().get(&id) {
            if index.video.status != VideoStatus::Recording || fetched.elapsed() < LIVE_INDEX_TTL {
                return Ok(Some(index.clone()));
            }
        }
        let Some(index) = VideoIndex::load(&self.catalog, id).await? else {
            self.lock().remove(&id);
            return Ok(None);
        };
        let index = Arc::new(index);
        let mut indexes = self.lock();
        if indexes.len() >= CACHED_INDEXES {
            // Drop the oldest entry: cheap, and good enough for a working set of popular videos.
            if let Some(oldest) = indexes.iter().min_by_key(|(_, (at, _))| *at).map(|(id, _)| *id) {
                indexes.remove(&oldest);
            }
        }
        indexes.insert(id, (Instant::now(), index.clone()));
        Ok(Some(index))
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
        self.indexes.lock().unwrap_or_else(|e| e.into_inner())
    }
}
