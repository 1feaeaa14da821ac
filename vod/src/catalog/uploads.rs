//! The `uploads` table: a tus upload's length, the offset durably stored so far, the metadata
//! its uploader sent, its expiry, and what became of it (state, error, the video it becomes).
//! The bytes themselves are in upload storage (see `crate::upload`), never here.

use super::model::{joined_tags, split_tags};
use super::{corrupt, insert_videos, now_ms, Catalog, CatalogError, UploadState, Video, Visibility};
use crate::VideoId;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

const UPLOAD_COLUMNS: &str = "id, video_id, state, error, length, upload_offset, title, description, tags, \
     visibility, filename, sha1, created_at, updated_at, expires_at";

/// One upload as the catalog stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UploadRow {
    pub id: String,
    /// The video it becomes (listed once processed).
    pub video_id: String,
    pub state: UploadState,
    /// Why it failed (with [`UploadState::Failed`]).
    pub error: Option<String>,
    /// Declared total size (`Upload-Length`).
    pub length: i64,
    /// Bytes stored and synced (`Upload-Offset`).
    pub offset: i64,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    /// The uploader's file name, for display only (never a path).
    pub filename: String,
    /// SHA-1 of the whole file (hex), once complete.
    pub sha1: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// An upload still [`UploadState::Uploading`] then is removed.
    pub expires_at_ms: i64,
}

/// What [`Catalog::create_upload`] stores (values already checked by the caller).
#[derive(Clone, Debug)]
pub struct NewUpload<'a> {
    pub id: VideoId,
    pub video_id: VideoId,
    pub length: u64,
    pub title: &'a str,
    pub description: &'a str,
    pub tags: &'a [String],
    pub visibility: Visibility,
    pub filename: &'a str,
    pub expires_at_ms: i64,
}

impl Catalog {
    /// Adds an upload in [`UploadState::Uploading`] at offset 0.
    pub async fn create_upload(&self, new: &NewUpload<'_>) -> Result<(), CatalogError> {
        let now = now_ms();
        sqlx::query(&format!(
            "INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES ($1, $2, $3, NULL, $4, 0, $5, $6, $7, $8, $9, NULL, $10, $10, $11)"
        ))
        .bind(new.id.as_str())
        .bind(new.video_id.as_str())
        .bind(UploadState::Uploading.as_str())
        .bind(i64::try_from(new.length).map_err(|_| CatalogError::Invalid("upload length too large".into()))?)
        .bind(new.title)
        .bind(new.description)
        .bind(joined_tags(new.tags))
        .bind(new.visibility.as_str())
        .bind(new.filename)
        .bind(now)
        .bind(new.expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One upload.
    pub async fn upload(&self, id: VideoId) -> Result<Option<UploadRow>, CatalogError> {
        let row = sqlx::query(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(upload_from_row).transpose()
    }

    /// Records the offset durably stored, and pushes the expiry to `expires_at_ms`.
    pub async fn set_upload_offset(&self, id: VideoId, offset: u64, expires_at_ms: i64) -> Result<(), CatalogError> {
        sqlx::query("UPDATE uploads SET upload_offset = $2, expires_at = $3, updated_at = $4 WHERE id = $1")
            .bind(id.as_str())
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .bind(expires_at_ms)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves an upload to `state` (with the reason for [`UploadState::Failed`]).
    pub async fn set_upload_state(
        &self,
        id: VideoId,
        state: UploadState,
        error: Option<&str>,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE uploads SET state = $2, error = $3, updated_at = $4 WHERE id = $1")
            .bind(id.as_str())
            .bind(state.as_str())
            .bind(error)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every byte arrived: [`UploadState::Processing`], with the file's SHA-1.
    pub async fn complete_upload(&self, id: VideoId, sha1: &str) -> Result<(), CatalogError> {
        sqlx::query("UPDATE uploads SET state = $2, sha1 = $3, updated_at = $4 WHERE id = $1")
            .bind(id.as_str())
            .bind(UploadState::Processing.as_str())
            .bind(sha1)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes an upload's row; `false` if there was none.
    pub async fn delete_upload(&self, id: VideoId) -> Result<bool, CatalogError> {
        let result = sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id.as_str()).execute(&self.pool).await?;
        Ok(result.rows_affected() > 0)
    }

    /// Uploads in `state`, oldest first.
    pub async fn uploads_with_state(&self, state: UploadState) -> Result<Vec<UploadRow>, CatalogError> {
        let rows =
            sqlx::query(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE state = $1 ORDER BY created_at, id"))
                .bind(state.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(upload_from_row).collect()
    }

    /// Uploads still [`UploadState::Uploading`] whose expiry is at or before `now_ms`.
    pub async fn expired_uploads(&self, now_ms: i64) -> Result<Vec<VideoId>, CatalogError> {
        let rows = sqlx::query("SELECT id FROM uploads WHERE state = $1 AND expires_at <= $2 ORDER BY expires_at")
            .bind(UploadState::Uploading.as_str())
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| super::parse_id(row.try_get("id")?)).collect()
    }

    /// Adds a finished video made from an upload (`video.source` should be
    /// [`super::VideoSource::Upload`]); adding the same id again is [`CatalogError::VideoExists`].
    pub async fn insert_video(&self, video: &Video) -> Result<(), CatalogError> {
        let mut connection = self.pool.acquire().await?;
        insert_videos(&mut connection, std::slice::from_ref(video)).await.map_err(|error| match error {
            sqlx::Error::Database(error) if error.is_unique_violation() => {
                CatalogError::VideoExists(VideoId::parse(&video.id).unwrap_or_else(VideoId::generate))
            }
            error => error.into(),
        })
    }
}

fn upload_from_row(row: &AnyRow) -> Result<UploadRow, CatalogError> {
    let text = |column: &str| -> Result<String, CatalogError> { Ok(row.try_get(column)?) };
    Ok(UploadRow {
        id: text("id")?,
        video_id: text("video_id")?,
        state: text("state")?.parse().map_err(corrupt)?,
        error: row.try_get("error")?,
        length: row.try_get("length")?,
        offset: row.try_get("upload_offset")?,
        title: text("title")?,
        description: text("description")?,
        tags: split_tags(&text("tags")?),
        visibility: text("visibility")?.parse().map_err(corrupt)?,
        filename: text("filename")?,
        sha1: row.try_get("sha1")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        expires_at_ms: row.try_get("expires_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn uploads_round_trip_and_expire() {
        let catalog = Catalog::connect("sqlite::memory:").await.unwrap();
        let (id, video_id) = (VideoId::generate(), VideoId::generate());
        let tags = vec!["music".to_owned(), "live".to_owned()];
        let new = NewUpload {
            id,
            video_id,
            length: 1000,
            title: "Holiday",
            description: "a file",
            tags: &tags,
            visibility: Visibility::Unlisted,
            filename: "../../etc/passwd",
            expires_at_ms: 5_000,
        };
        catalog.create_upload(&new).await.unwrap();
        let row = catalog.upload(id).await.unwrap().unwrap();
        assert_eq!((row.state, row.offset, row.length), (UploadState::Uploading, 0, 1000));
        assert_eq!(row.tags, tags);
        assert_eq!(row.filename, "../../etc/passwd");
        catalog.set_upload_offset(id, 400, 9_000).await.unwrap();
        assert!(catalog.expired_uploads(8_999).await.unwrap().is_empty());
        assert_eq!(catalog.expired_uploads(9_000).await.unwrap(), vec![id]);
        catalog.set_upload_state(id, UploadState::Failed, Some("no video")).await.unwrap();
        let row = catalog.upload(id).await.unwrap().unwrap();
        assert_eq!((row.state, row.offset, row.error.as_deref()), (UploadState::Failed, 400, Some("no video")));
        assert!(catalog.expired_uploads(i64::MAX).await.unwrap().is_empty(), "only uploading ones expire");
        assert_eq!(catalog.uploads_with_state(UploadState::Failed).await.unwrap().len(), 1);
        assert!(catalog.delete_upload(id).await.unwrap());
        assert!(catalog.upload(id).await.unwrap().is_none());
        catalog.close().await;
    }
}
