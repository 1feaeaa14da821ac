//! The `video_captions` table: which caption languages a video has (label, cue count, size).
//! The files are in storage (`crate::captions::caption_key`); a change also bumps the video's
//! `updated_at`, so every server's cached index (revalidated against the video row) sees it.

use super::{missing_video_as, now_ms, Catalog, CatalogError};
use crate::VideoId;
use serde::Serialize;
use sqlx::Row;

/// One caption language of a video.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaptionRow {
    /// Canonical BCP 47 tag (`crate::captions::Language`).
    pub lang: String,
    pub label: String,
    pub cues: i64,
    pub size_bytes: i64,
    pub created_at_ms: i64,
}

impl Catalog {
    /// Adds or replaces the captions of video `id` in `caption.lang`;
    /// [`CatalogError::NoSuchVideo`] if there is no such video.
    pub async fn set_caption(&self, id: VideoId, caption: &CaptionRow) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO video_captions (video_id, lang, label, cues, size_bytes, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (video_id, lang) DO UPDATE SET label = $3, cues = $4, size_bytes = $5, created_at = $6",
        )
        .bind(id.as_str())
        .bind(caption.lang.as_str())
        .bind(caption.label.as_str())
        .bind(caption.cues)
        .bind(caption.size_bytes)
        .bind(caption.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|error| missing_video_as(id, error))?;
        touch(&mut tx, id).await?;
        Ok(tx.commit().await?)
    }

    /// The caption languages of video `id`, by tag.
    pub async fn captions(&self, id: VideoId) -> Result<Vec<CaptionRow>, CatalogError> {
        let rows = sqlx::query(
            "SELECT lang, label, cues, size_bytes, created_at FROM video_captions WHERE video_id = $1 ORDER BY lang",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CaptionRow {
                    lang: row.try_get("lang")?,
                    label: row.try_get("label")?,
                    cues: row.try_get("cues")?,
                    size_bytes: row.try_get("size_bytes")?,
                    created_at_ms: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Removes the captions of video `id` in `lang`; `false` if it had none.
    pub async fn delete_caption(&self, id: VideoId, lang: &str) -> Result<bool, CatalogError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM video_captions WHERE video_id = $1 AND lang = $2")
            .bind(id.as_str())
            .bind(lang)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted > 0 {
            touch(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }
}

async fn touch(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: VideoId) -> Result<(), CatalogError> {
    // Always a new value, so a cached index sees the change even within one millisecond.
    sqlx::query(
        "UPDATE videos SET updated_at = CASE WHEN updated_at >= $2 THEN updated_at + 1 ELSE $2 END WHERE id = $1",
    )
    .bind(id.as_str())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{NewVideo, Visibility};

    #[tokio::test]
    async fn captions_are_set_replaced_listed_and_go_with_their_video() {
        let catalog = Catalog::connect("sqlite::memory:").await.unwrap();
        let id = VideoId::generate();
        let row = |lang: &str, cues| CaptionRow {
            lang: lang.into(),
            label: format!("{lang} label"),
            cues,
            size_bytes: 100,
            created_at_ms: 5,
        };
        assert!(matches!(catalog.set_caption(id, &row("en", 1)).await, Err(CatalogError::NoSuchVideo(_))));
        let new = NewVideo { id, title: "t", stream: "s", visibility: Visibility::Public, created_at_ms: 1 };
        catalog.create_video(&new).await.unwrap();
        let before = catalog.video(id).await.unwrap().unwrap().updated_at_ms;
        catalog.set_caption(id, &row("fr", 2)).await.unwrap();
        catalog.set_caption(id, &row("en", 1)).await.unwrap();
        catalog.set_caption(id, &row("en", 3)).await.unwrap();
        let listed = catalog.captions(id).await.unwrap();
        assert_eq!(listed, vec![row("en", 3), row("fr", 2)]);
        assert!(catalog.video(id).await.unwrap().unwrap().updated_at_ms > before, "the row changed");
        assert!(catalog.delete_caption(id, "fr").await.unwrap());
        assert!(!catalog.delete_caption(id, "fr").await.unwrap());
        assert_eq!(catalog.captions(id).await.unwrap().len(), 1);
        assert!(catalog.delete(id).await.unwrap());
        assert!(catalog.captions(id).await.unwrap().is_empty());
    }
}
