//! Uploaded files: resumable tus 1.0 uploads into upload storage, and the queue that turns a
//! complete upload into a video.
//!
//! - [`tus`]: the protocol core (headers, `PATCH` rules, checksums), sans-IO.
//! - [`metadata`]: what an uploader may say about its file (`Upload-Metadata`).
//! - [`package`]: a processed file's renditions written as CMAF and indexed like a recording.
//! - [`Uploads`] (this module): the driver. An upload is a row in the catalog (`uploads`) and
//!   one object in upload storage, `<upload-id>/data`, keyed only by the server's id. A `PATCH`
//!   streams its body to storage in pieces of at most [`WRITE_PIECE`] bytes (memory per upload
//!   is bounded, whatever the file's size), then syncs the file and only then records the new
//!   offset: the stored offset is always durable, and bytes a crash left past it are cut off
//!   at the next request. A `PATCH` cut off mid-way keeps what arrived (unless it carried a
//!   checksum, which can then not be verified: its bytes are discarded). One request at a
//!   time per upload. Abandoned uploads expire ([`Uploads::sweep_expired`]).
//! - Processing: a complete upload moves to `processing`; [`Uploads::run_processing`] runs a
//!   [`Process`] on one upload at a time (oldest first; at start, it picks up again what a crash
//!   interrupted), then adds the video (`source = "upload"`) as `ready`, or `failed` with the
//!   reason, and removes the uploaded file.

pub mod metadata;
pub mod package;
pub mod tus;

use crate::catalog::{
    Catalog, CatalogError, NewUpload, UploadRow, UploadState, Video, VideoSource, VideoStatus, Visibility,
};
use crate::storage::{self, Storage};
use crate::VideoId;
use bytes::Bytes;
use dashmap::DashMap;
use futures_util::{Stream, StreamExt};
use metadata::UploadMetadata;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tus::{ChecksumCheck, Progress, TusError};

/// Bytes of a `PATCH` body held before they are written to storage.
pub const WRITE_PIECE: usize = 1 << 20;
/// How long a request waits for another request on the same upload to finish.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Why an upload request failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Tus(#[from] TusError),
    #[error("no upload {0}")]
    NotFound(String),
    #[error("another request on this upload is still running; retry")]
    Busy,
    #[error("{0}")]
    Invalid(String),
    #[error("the request body ended early ({0})")]
    BodyInterrupted(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("upload storage failed: {0}")]
    Storage(#[from] std::io::Error),
}

impl UploadError {
    /// The HTTP status for this failure.
    pub fn status(&self) -> u16 {
        match self {
            UploadError::Tus(e) => e.status(),
            UploadError::NotFound(_) => 404,
            UploadError::Busy => 423,
            UploadError::Invalid(_) | UploadError::BodyInterrupted(_) => 400,
            UploadError::Catalog(CatalogError::Invalid(_)) => 400,
            UploadError::Catalog(_) | UploadError::Storage(_) => 503,
        }
    }
}

/// Settings of [`Uploads`].
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// Largest `Upload-Length` accepted.
    pub max_bytes: u64,
    /// An upload with no request for this long expires.
    pub expiry: Duration,
    /// Visibility when the metadata names none.
    pub default_visibility: Visibility,
}

/// A video made by a [`Process`]: its tracks, written to the recordings storage, to index.
#[derive(Debug, Clone, Default)]
pub struct Processed {
    pub video: package::PackagedVideo,
    /// Storage key of its thumbnail, if one was made.
    pub thumbnail: Option<String>,
}

/// Turns an uploaded file into a video's media (probe, transcode, index): `Ok` when the video
/// is playable, `Err(reason)` when the file cannot be played (the reason is shown to users).
/// It must start over cleanly when called again for the same video (after a crash).
pub trait Process: Send + Sync + 'static {
    fn process<'a>(
        &'a self,
        upload: &'a UploadRow,
        video_id: VideoId,
        file: PathBuf,
        progress: Arc<ProcessProgress>,
    ) -> Pin<Box<dyn Future<Output = Result<Processed, String>> + Send + 'a>>;
}

/// How far the running job is, for the API: permille done and the estimated seconds left.
#[derive(Debug, Default)]
pub struct ProcessProgress {
    permille: AtomicU64,
    eta_s: AtomicU64,
}

impl ProcessProgress {
    /// `fraction` (0 to 1) done, `eta` left.
    pub fn set(&self, fraction: f64, eta: Option<Duration>) {
        self.permille.store((fraction.clamp(0.0, 1.0) * 1000.0) as u64, Ordering::Relaxed);
        self.eta_s.store(eta.map_or(u64::MAX, |eta| eta.as_secs()), Ordering::Relaxed);
    }

    /// (fraction done, seconds left if known).
    pub fn get(&self) -> (f64, Option<u64>) {
        let eta = self.eta_s.load(Ordering::Relaxed);
        (self.permille.load(Ordering::Relaxed) as f64 / 1000.0, (eta != u64::MAX).then_some(eta))
    }
}

/// The SHA-1 of a file (hex), read in pieces.
fn file_sha1(path: &std::path::Path) -> std::io::Result<String> {
    use sha1::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha1::Sha1::new();
    let mut buffer = vec![0u8; WRITE_PIECE];
    loop {
        match file.read(&mut buffer)? {
            0 => break,
            n => hasher.update(&buffer[..n]),
        }
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// One upload being written to: its request lock and the bytes received so far in the
/// request in progress (for progress reports).
#[derive(Default)]
struct Active {
    lock: Arc<tokio::sync::Mutex<()>>,
    receiving: AtomicU64,
}

/// The result of a `PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchOutcome {
    pub offset: u64,
    pub complete: bool,
    pub expires_at_ms: i64,
}

/// An upload as the API reports it.
#[derive(Debug, Clone)]
pub struct UploadStatus {
    pub row: UploadRow,
    /// Bytes received (stored, plus those of a request in progress).
    pub received: u64,
    /// Processing of this upload, when it is the running job.
    pub processing: Option<(f64, Option<u64>)>,
}

/// Resumable uploads: creation, `HEAD`, `PATCH`, termination, expiry and the processing queue.
pub struct Uploads {
    catalog: Arc<Catalog>,
    storage: Arc<dyn Storage>,
    /// The directory `storage` writes to (a processor reads the file from there).
    root: PathBuf,
    config: UploadConfig,
    active: DashMap<VideoId, Arc<Active>>,
    /// Woken when an upload becomes complete.
    completed: tokio::sync::Notify,
    /// The running jobs and their progress.
    jobs: std::sync::Mutex<std::collections::HashMap<VideoId, Arc<ProcessProgress>>>,
}

fn data_key(id: VideoId) -> String {
    format!("{id}/data")
}

impl Uploads {
    /// Uploads stored under `root` (an [`crate::storage::FsStorage`] directory).
    pub fn open(catalog: Arc<Catalog>, root: PathBuf, config: UploadConfig) -> std::io::Result<Uploads> {
        let storage: Arc<dyn Storage> = Arc::new(crate::storage::FsStorage::open(&root)?);
        Ok(Uploads {
            catalog,
            storage,
            root,
            config,
            active: DashMap::new(),
            completed: tokio::sync::Notify::new(),
            jobs: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    pub fn config(&self) -> &UploadConfig {
        &self.config
    }

    fn expiry_from_now(&self) -> i64 {
        crate::catalog::now_ms().saturating_add(i64::try_from(self.config.expiry.as_millis()).unwrap_or(i64::MAX))
    }

    /// Creates an upload of `length` bytes (checked against the limit before anything is
    /// stored) from `Upload-Length` and `Upload-Metadata`.
    pub async fn create(&self, length: Option<&str>, metadata: Option<&str>) -> Result<UploadRow, UploadError> {
        let length = tus::upload_length(length, self.config.max_bytes)?;
        let pairs = tus::parse_metadata(metadata.unwrap_or_default())?;
        let meta = UploadMetadata::from_pairs(&pairs, self.config.default_visibility)?;
        let (id, video_id) = (VideoId::generate(), VideoId::generate());
        let key = data_key(id);
        storage::run(&self.storage, move |s| s.put(&key, &[])).await?;
        let new = NewUpload {
            id,
            video_id,
            length,
            title: &meta.title,
            description: &meta.description,
            tags: &meta.tags,
            visibility: meta.visibility,
            filename: &meta.filename,
            expires_at_ms: self.expiry_from_now(),
        };
        if let Err(e) = self.catalog.create_upload(&new).await {
            self.remove_files(id).await;
            return Err(e.into());
        }
        if length == 0 {
            self.complete(id).await?;
        }
        self.row(id).await
    }

    async fn row(&self, id: VideoId) -> Result<UploadRow, UploadError> {
        self.catalog.upload(id).await?.ok_or_else(|| UploadError::NotFound(id.to_string()))
    }

    /// An upload that exists and has not expired.
    async fn live_row(&self, id: &str) -> Result<(VideoId, UploadRow), UploadError> {
        let not_found = || UploadError::NotFound(id.chars().take(40).collect());
        let id = VideoId::parse(id).ok_or_else(not_found)?;
        let row = self.catalog.upload(id).await?.ok_or_else(not_found)?;
        if row.state == UploadState::Uploading && row.expires_at_ms <= crate::catalog::now_ms() {
            return Err(not_found());
        }
        Ok((id, row))
    }

    async fn lock(&self, id: VideoId) -> Result<(Arc<Active>, tokio::sync::OwnedMutexGuard<()>), UploadError> {
        let active = self.active.entry(id).or_default().clone();
        // A cut connection's request ends as soon as its body errors: wait for it a moment.
        let guard =
            tokio::time::timeout(LOCK_WAIT, active.lock.clone().lock_owned()).await.map_err(|_| UploadError::Busy)?;
        Ok((active, guard))
    }

    /// The upload for `HEAD`: waits for a request in progress so the offset is settled.
    pub async fn head(&self, id: &str) -> Result<UploadRow, UploadError> {
        let (id, _) = self.live_row(id).await?;
        let _guard = self.lock(id).await?;
        self.row(id).await
    }

    /// The upload with its progress, for the API.
    pub async fn status(&self, id: &str) -> Result<UploadStatus, UploadError> {
        let (id, row) = self.live_row(id).await?;
        let receiving = self.active.get(&id).map_or(0, |a| a.receiving.load(Ordering::Relaxed));
        let processing = rill_media::sync::lock(&self.jobs).get(&id).map(|progress| progress.get());
        let received = (row.offset as u64 + receiving).min(row.length as u64);
        Ok(UploadStatus { row, received, processing })
    }

    /// A `PATCH`: `body` is appended at `offset` (which must be the stored offset). See the
    /// module doc for what is kept when the body is cut off.
    pub async fn patch<S, E>(
        &self,
        id: &str,
        offset: Option<&str>,
        content_type: Option<&str>,
        content_length: Option<u64>,
        checksum: Option<&str>,
        mut body: S,
    ) -> Result<PatchOutcome, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        tus::check_patch_content_type(content_type)?;
        let sent = tus::upload_offset(offset)?;
        let mut check = checksum.map(tus::Checksum::parse).transpose()?.map(ChecksumCheck::new);
        let (id, _) = self.live_row(id).await?;
        let (active, _guard) = self.lock(id).await?;
        let row = self.row(id).await?;
        if row.state != UploadState::Uploading {
            return Err(TusError::Complete.into());
        }
        let stored = self.settle(id, row.offset as u64).await?;
        let mut progress = Progress { offset: stored, length: row.length as u64 };
        let room = progress.begin_patch(sent, content_length)?;
        let key = data_key(id);
        let mut piece: Vec<u8> = Vec::new();
        let mut written = 0u64;
        let mut failure: Option<UploadError> = None;
        while let Some(next) = body.next().await {
            let chunk = match next {
                Ok(chunk) => chunk,
                Err(e) => {
                    failure = Some(UploadError::BodyInterrupted(e.to_string()));
                    break;
                }
            };
            let total = written + piece.len() as u64 + chunk.len() as u64;
            if total > room {
                failure = Some(TusError::PastLength { over: total - room }.into());
                break;
            }
            if let Some(check) = &mut check {
                check.update(&chunk);
            }
            piece.extend_from_slice(&chunk);
            active.receiving.store(written + piece.len() as u64, Ordering::Relaxed);
            if piece.len() >= WRITE_PIECE {
                written += self.append(&key, std::mem::take(&mut piece)).await?;
            }
        }
        active.receiving.store(0, Ordering::Relaxed);
        // A bad body, or a checksum that cannot be or is not met: nothing of it is kept.
        let discard = match (&failure, check) {
            (Some(UploadError::BodyInterrupted(_)), None) => None,
            (Some(_), _) => failure.take(),
            (None, Some(check)) => check.verify().err().map(UploadError::from),
            (None, None) => None,
        };
        if let Some(error) = discard {
            let key = key.clone();
            storage::run(&self.storage, move |s| s.truncate(&key, stored)).await?;
            return Err(error);
        }
        written += self.append(&key, piece).await?;
        let sync_key = key.clone();
        storage::run(&self.storage, move |s| s.sync(&sync_key)).await?;
        progress.advance(written)?;
        let expires_at_ms = self.expiry_from_now();
        self.catalog.set_upload_offset(id, progress.offset, expires_at_ms).await?;
        if progress.is_complete() {
            self.complete(id).await?;
        }
        if let Some(failure) = failure {
            tracing::info!(upload = %id, offset = progress.offset, %failure, "upload request cut off; kept what arrived");
        }
        Ok(PatchOutcome { offset: progress.offset, complete: progress.is_complete(), expires_at_ms })
    }

    /// The stored offset, cutting off bytes a crash left past it.
    async fn settle(&self, id: VideoId, recorded: u64) -> Result<u64, UploadError> {
        let key = data_key(id);
        let stored = storage::run(&self.storage, move |s| {
            let size = match s.size(&key) {
                Ok(size) => size,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    s.put(&key, &[])?;
                    0
                }
                Err(e) => return Err(e),
            };
            if size > recorded {
                s.truncate(&key, recorded)?;
            }
            Ok(size.min(recorded))
        })
        .await?;
        Ok(stored)
    }

    async fn append(&self, key: &str, piece: Vec<u8>) -> Result<u64, UploadError> {
        if piece.is_empty() {
            return Ok(0);
        }
        let (key, len) = (key.to_owned(), piece.len() as u64);
        storage::run(&self.storage, move |s| s.append(&key, &[&piece])).await?;
        Ok(len)
    }

    async fn complete(&self, id: VideoId) -> Result<(), UploadError> {
        let path = self.root.join(id.as_str()).join("data");
        let sha1 = tokio::task::spawn_blocking(move || file_sha1(&path)).await.map_err(std::io::Error::other)??;
        self.catalog.complete_upload(id, &sha1).await?;
        tracing::info!(upload = %id, "upload complete; queued for processing");
        self.completed.notify_one();
        Ok(())
    }

    /// Termination: the upload's file and row are removed (`false` if there was none).
    pub async fn terminate(&self, id: &str) -> Result<bool, UploadError> {
        let Ok((id, _)) = self.live_row(id).await else { return Ok(false) };
        let _guard = self.lock(id).await?;
        self.remove_files(id).await;
        let deleted = self.catalog.delete_upload(id).await?;
        self.active.remove(&id);
        Ok(deleted)
    }

    async fn remove_files(&self, id: VideoId) {
        let prefix = id.to_string();
        if let Err(error) = storage::run(&self.storage, move |s| s.remove_all(&prefix)).await {
            tracing::warn!(upload = %id, %error, "cannot remove an upload's files");
        }
    }

    /// Removes every upload still receiving whose expiry has passed; returns how many.
    pub async fn sweep_expired(&self) -> Result<usize, UploadError> {
        let expired = self.catalog.expired_uploads(crate::catalog::now_ms()).await?;
        for &id in &expired {
            let _guard = self.lock(id).await?;
            self.remove_files(id).await;
            self.catalog.delete_upload(id).await?;
            self.active.remove(&id);
            tracing::info!(upload = %id, "abandoned upload expired and removed");
        }
        Ok(expired.len())
    }

    /// Sweeps expired uploads every `interval`, forever.
    pub async fn run_expiry(self: Arc<Self>, interval: Duration) {
        loop {
            if let Err(error) = self.sweep_expired().await {
                tracing::warn!(%error, "upload expiry sweep failed");
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Processes complete uploads, oldest first, forever (including, at start, those a crash
    /// interrupted); one job per call (run it `n` times for `n` jobs at once).
    pub async fn run_processing(self: Arc<Self>, process: Arc<dyn Process>) {
        loop {
            let notified = self.completed.notified();
            let queued = match self.catalog.uploads_with_state(UploadState::Processing).await {
                Ok(queued) => queued,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the upload queue; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
            };
            // The oldest upload no other job has taken.
            let claimed = queued.into_iter().find_map(|upload| {
                let id = VideoId::parse(&upload.id)?;
                let mut jobs = rill_media::sync::lock(&self.jobs);
                if jobs.contains_key(&id) {
                    return None;
                }
                jobs.insert(id, Arc::new(ProcessProgress::default()));
                Some((id, upload))
            });
            let Some((id, upload)) = claimed else {
                notified.await;
                continue;
            };
            let result = self.process_one(&*process, id, &upload).await;
            rill_media::sync::lock(&self.jobs).remove(&id);
            // Another job may be waiting for this one's turn to end.
            self.completed.notify_one();
            if let Err(error) = result {
                tracing::warn!(upload = %upload.id, %error, "processing an upload failed; will retry");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }

    async fn process_one(&self, process: &dyn Process, id: VideoId, upload: &UploadRow) -> Result<(), UploadError> {
        let video_id = VideoId::parse(&upload.video_id)
            .ok_or_else(|| UploadError::Invalid(format!("upload {}: bad video id in the catalog", upload.id)))?;
        let progress = rill_media::sync::lock(&self.jobs).get(&id).cloned().unwrap_or_default();
        let started = std::time::Instant::now();
        let file = self.root.join(id.as_str()).join("data");
        let result = process.process(upload, video_id, file, progress).await;
        let now = crate::catalog::now_ms();
        let (status, error, processed) = match result {
            Ok(processed) => (VideoStatus::Ready, None, processed),
            Err(reason) => (VideoStatus::Failed, Some(reason), Processed::default()),
        };
        let video = Video {
            id: video_id.to_string(),
            title: upload.title.clone(),
            description: upload.description.clone(),
            tags: upload.tags.clone(),
            visibility: upload.visibility,
            status,
            error: error.clone(),
            stream: String::new(),
            duration_ms: 0,
            size_bytes: 0,
            thumbnail: processed.thumbnail.clone(),
            created_at_ms: upload.created_at_ms,
            ended_at_ms: Some(now),
            updated_at_ms: now,
            frames_lost: 0,
            lost_ms: 0,
            source: VideoSource::Upload,
        };
        // A crash while indexing left a partial video: index it again from the start.
        self.catalog.delete(video_id).await?;
        self.catalog.insert_video(&video).await?;
        for track in &processed.video.tracks {
            self.catalog.add_init(video_id, &track.name, package::INIT_VERSION, &track.info).await?;
            for segment in &track.segments {
                self.catalog.add_segment(video_id, segment, track.name == "video").await?;
            }
        }
        let state = if status == VideoStatus::Ready { UploadState::Ready } else { UploadState::Failed };
        self.catalog.set_upload_state(id, state, error.as_deref()).await?;
        self.remove_files(id).await;
        tracing::info!(upload = %id, video = %video_id, ?state, error = error.as_deref().unwrap_or(""),
            elapsed_s = started.elapsed().as_secs_f64(), "upload processed");
        Ok(())
    }
}
