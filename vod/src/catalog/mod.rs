//! The video catalog: which videos exist, their metadata, and the index of their inits and
//! segments, in SQLite (one file, the default) or PostgreSQL.
//!
//! One set of queries serves both databases through `sqlx`'s `Any` driver: placeholders are
//! `$1, $2, …`, times are BIGINT unix milliseconds, flags BIGINT 0/1, ids TEXT. Only the schema
//! and full-text search differ per [`Dialect`] (see `schema` and `search`).
//!
//! Submodules: `model` (the public types and validation), `schema` (tables and migrations),
//! `search` (listing and full-text search), `sql` (statements with bound values), `uploads`
//! (tus uploads), `captions` (a video's caption languages).

mod captions;
mod model;
mod schema;
mod search;
mod sql;
mod uploads;

pub use schema::{migrate_set, Migration, Step};
pub use sql::{Arg, Bindings};

pub use captions::CaptionRow;
pub use model::{
    InitRow, NewVideo, SegmentRow, UploadState, Video, VideoEnd, VideoPage, VideoPatch, VideoQuery, VideoSource,
    VideoStatus, Visibility, DEFAULT_PAGE_SIZE, MAX_DESCRIPTION_CHARS, MAX_PAGE_SIZE, MAX_TAGS, MAX_TAG_CHARS,
    MAX_TITLE_CHARS,
};
pub use uploads::{NewUpload, UploadRow};

use crate::VideoId;
pub(crate) use model::{check_description, checked_title, normalized_tags};
use model::{joined_tags, recording_title, split_tags};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Executor, Row};
use std::path::{Path, PathBuf};

/// Connections to a PostgreSQL catalog.
const POSTGRES_POOL_SIZE: u32 = 8;
/// Connections to a SQLite file: WAL lets readers run beside the one writer.
const SQLITE_POOL_SIZE: u32 = 4;
/// Pragmas every SQLite connection runs when it opens (`journal_mode = WAL` is set once, at
/// connect, because it is stored in the file).
const SQLITE_CONNECTION_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 5000",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    // Statement journals (written for every statement that fires triggers or checks foreign
    // keys inside a transaction) and sort spills in memory instead of temporary files.
    "PRAGMA temp_store = MEMORY",
    // Up to 16 MiB of page cache per connection (SQLite's default, 2 MiB, is smaller than the
    // indexes a write touches once the catalog holds ~100 000 videos; it then re-reads and
    // spills pages on every write).
    "PRAGMA cache_size = -16384",
    // Rows per index that `PRAGMA optimize` samples when it refreshes the planner's statistics.
    "PRAGMA analysis_limit = 1000",
];
/// Refreshes the SQLite query planner's statistics of every table if they are missing or
/// stale (SQLite's advice for long-lived connections: at open, and before closing).
const SQLITE_OPTIMIZE: &str = "PRAGMA optimize = 0x10002";

/// Videos per multi-row INSERT in [`Catalog::import_videos`] (16 values each: far below the
/// limits on bound values, 32 766 in SQLite and 65 535 in PostgreSQL).
const IMPORT_ROWS_PER_STATEMENT: usize = 100;

/// The columns of a [`Video`], selected from `videos v`.
const VIDEO_COLUMNS: &str = "v.id, v.title, v.description, v.tags, v.visibility, v.status, v.error, v.stream, \
     v.duration_ms, v.size_bytes, v.thumbnail, v.created_at, v.ended_at, v.updated_at, v.frames_lost, v.lost_ms, v.source";

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The URL names no supported database (only its scheme is kept: URLs carry passwords).
    #[error(
        "unsupported catalog URL scheme {0:?}: use sqlite://PATH, sqlite::memory:, postgres://… or postgresql://…"
    )]
    UnsupportedUrl(String),
    #[error("cannot create the directory {path} for the catalog database: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error(
        "the catalog database has schema version {found}, but this Rill knows versions up to {known}; \
         run a newer Rill (or restore a backup made for this version)"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("catalog migration {version} failed: {source}")]
    Migration { version: i64, source: sqlx::Error },
    /// A value a user or caller supplied breaks a rule; the message says which.
    #[error("{0}")]
    Invalid(String),
    #[error("no video {0}")]
    NoSuchVideo(VideoId),
    #[error("video {0} already exists")]
    VideoExists(VideoId),
    /// The database holds a value this code cannot read (edited by hand, or a bug).
    #[error("the catalog database holds an unreadable value: {0}")]
    Corrupt(String),
    #[error("catalog database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl CatalogError {
    /// The database could not be reached in time (a pool timeout, a broken connection): the
    /// same call may succeed later. Everything else is a definite answer.
    pub fn is_transient(&self) -> bool {
        matches!(self, CatalogError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)))
    }
}

/// The SQL dialect of the connected database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection pool to the catalog database. Cheap to clone (clones share the pool).
#[derive(Clone, Debug)]
pub struct Catalog {
    pool: AnyPool,
    dialect: Dialect,
}

/// Where a `sqlite:` URL points.
enum SqliteTarget {
    Memory,
    File(PathBuf),
}

impl Catalog {
    /// Opens the catalog at `url` and brings its schema up to date.
    ///
    /// * `sqlite://PATH` (or `sqlite:PATH`): a file, relative to the current directory unless
    ///   absolute (`sqlite:///var/lib/rill.db`); the file and its directory are created if
    ///   missing. WAL journal, `synchronous = NORMAL`, 5 s busy timeout, foreign keys on.
    /// * `sqlite::memory:`: a private in-memory database (one connection), for tests.
    /// * `postgres://…` or `postgresql://…`.
    pub async fn connect(url: &str) -> Result<Catalog, CatalogError> {
        sqlx::any::install_default_drivers();
        let scheme = url.split(':').next().unwrap_or_default();
        let catalog = match scheme {
            "sqlite" => Catalog::open_sqlite(sqlite_target(url)).await?,
            "postgres" | "postgresql" => Catalog {
                pool: AnyPoolOptions::new().max_connections(POSTGRES_POOL_SIZE).connect(url).await?,
                dialect: Dialect::Postgres,
            },
            _ => return Err(CatalogError::UnsupportedUrl(scheme.to_owned())),
        };
        if let Err(error) = schema::migrate(&catalog.pool, catalog.dialect).await {
            catalog.pool.close().await;
            return Err(error);
        }
        if catalog.dialect == Dialect::Sqlite {
            sqlx::query(SQLITE_OPTIMIZE).execute(&catalog.pool).await?;
        }
        Ok(catalog)
    }

    async fn open_sqlite(target: SqliteTarget) -> Result<Catalog, CatalogError> {
        let options = AnyPoolOptions::new().after_connect(|connection, _| {
            Box::pin(async move {
                for &pragma in SQLITE_CONNECTION_PRAGMAS {
                    connection.execute(pragma).await?;
                }
                Ok(())
            })
        });
        let pool = match target {
            // Every connection to `sqlite::memory:` is a new, empty database: keep exactly one
            // open for the life of the pool.
            SqliteTarget::Memory => {
                options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect("sqlite::memory:")
                    .await?
            }
            SqliteTarget::File(path) => {
                let path = std::path::absolute(&path)
                    .map_err(|source| CatalogError::CreateDir { path: path.clone(), source })?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|source| CatalogError::CreateDir { path: dir.to_owned(), source })?;
                }
                let pool = options
                    .max_connections(SQLITE_POOL_SIZE)
                    .connect(&format!("sqlite://{}?mode=rwc", percent_encoded_path(&path)))
                    .await?;
                let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool).await?;
                if !journal.eq_ignore_ascii_case("wal") {
                    sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
                }
                pool
            }
        };
        Ok(Catalog { pool, dialect: Dialect::Sqlite })
    }

    /// The connected database's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The connection pool, for subsystems that keep their own tables in the catalog
    /// database (with [`migrate_set`]).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Adds a video in [`VideoStatus::Recording`], with no description, tags or segments yet.
    /// The title is trimmed and, being made by the recorder rather than typed, cut to
    /// [`MAX_TITLE_CHARS`] instead of refused when longer; an empty title is refused.
    pub async fn create_video(&self, new: &NewVideo<'_>) -> Result<(), CatalogError> {
        let video = Video {
            id: new.id.to_string(),
            title: recording_title(new.title)?,
            description: String::new(),
            tags: Vec::new(),
            visibility: new.visibility,
            status: VideoStatus::Recording,
            error: None,
            stream: new.stream.to_owned(),
            duration_ms: 0,
            size_bytes: 0,
            thumbnail: None,
            created_at_ms: new.created_at_ms,
            ended_at_ms: None,
            updated_at_ms: new.created_at_ms,
            frames_lost: 0,
            lost_ms: 0,
            source: VideoSource::Recording,
        };
        let mut connection = self.pool.acquire().await?;
        insert_videos(&mut connection, std::slice::from_ref(&video)).await.map_err(|error| match error {
            sqlx::Error::Database(error) if error.is_unique_violation() => CatalogError::VideoExists(new.id),
            error => error.into(),
        })
    }

    /// Inserts complete video rows in one transaction, checked like [`Catalog::update`], a
    /// hundred per statement: for load tools and imports, not for recording.
    #[doc(hidden)]
    pub async fn import_videos(&self, videos: &[Video]) -> Result<(), CatalogError> {
        let checked = videos
            .iter()
            .map(|video| {
                if VideoId::parse(&video.id).is_none() {
                    return Err(CatalogError::Invalid(format!("{:?} is not a video id", video.id)));
                }
                check_description(&video.description)?;
                Ok(Video {
                    title: checked_title(&video.title)?.to_owned(),
                    tags: normalized_tags(&video.tags)?,
                    ..video.clone()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx = self.pool.begin().await?;
        for chunk in checked.chunks(IMPORT_ROWS_PER_STATEMENT) {
            insert_videos(&mut tx, chunk).await?;
        }
        Ok(tx.commit().await?)
    }

    /// Records a version of a track's initialization data. Adding the same (track, version)
    /// again keeps the first `info`.
    pub async fn add_init(&self, id: VideoId, track: &str, version: i64, info: &str) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO video_inits (video_id, track, version, info) VALUES ($1, $2, $3, $4)
             ON CONFLICT (video_id, track, version) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(track)
        .bind(version)
        .bind(info)
        .execute(&self.pool)
        .await
        .map_err(|error| missing_video_as(id, error))?;
        Ok(())
    }

    /// Indexes a completed segment and adds its size (and, when `counts_duration`, its
    /// duration: pass it for the one track that defines the video's length) to the video's
    /// totals, in one transaction. Idempotent on (id, track, sequence): adding a segment again
    /// changes nothing.
    ///
    /// The duration is recomputed from the track's segments (exact sums per timescale), so
    /// rounding never accumulates.
    pub async fn add_segment(
        &self,
        id: VideoId,
        segment: &SegmentRow,
        counts_duration: bool,
    ) -> Result<(), CatalogError> {
        if segment.timescale <= 0 {
            return Err(CatalogError::Invalid(format!(
                "segment timescale must be positive (got {})",
                segment.timescale
            )));
        }
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO segments (video_id, track, sequence, init_version, discontinuity, start_ticks,
                 duration_ticks, timescale, size_bytes, wall_clock_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (video_id, track, sequence) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(segment.track.as_str())
        .bind(segment.sequence)
        .bind(segment.init_version)
        .bind(i64::from(segment.discontinuity))
        .bind(segment.start_ticks)
        .bind(segment.duration_ticks)
        .bind(segment.timescale)
        .bind(segment.size_bytes)
        .bind(segment.wall_clock_ms)
        .execute(&mut *tx)
        .await
        .map_err(|error| missing_video_as(id, error))?
        .rows_affected();
        if inserted == 0 {
            return Ok(());
        }
        sqlx::query("UPDATE videos SET size_bytes = size_bytes + $2, updated_at = $3 WHERE id = $1")
            .bind(id.as_str())
            .bind(segment.size_bytes)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        if counts_duration {
            sqlx::query(
                "UPDATE videos SET duration_ms = (
                     SELECT COALESCE(SUM(track_ms), 0) FROM (
                         SELECT CAST(SUM(duration_ticks) AS BIGINT) * 1000 / timescale AS track_ms
                         FROM segments WHERE video_id = $1 AND track = $2 GROUP BY timescale
                     ) per_timescale)
                 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(segment.track.as_str())
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx.commit().await?)
    }

    /// Ends a recording: [`VideoStatus::Ready`], or [`VideoStatus::Failed`] with the reason.
    pub async fn finish_video(&self, id: VideoId, end: &VideoEnd) -> Result<(), CatalogError> {
        if end.status == VideoStatus::Recording {
            return Err(CatalogError::Invalid("a finished video cannot be recording".to_owned()));
        }
        let result =
            sqlx::query("UPDATE videos SET status = $2, error = $3, ended_at = $4, updated_at = $5 WHERE id = $1")
                .bind(id.as_str())
                .bind(end.status.as_str())
                .bind(end.error.clone())
                .bind(end.ended_at_ms)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
        require_video(id, result.rows_affected())
    }

    /// Adds a loss to the recording's totals ([`Video::frames_lost`], [`Video::lost_ms`]).
    pub async fn add_gap(&self, id: VideoId, frames: i64, lost_ms: i64) -> Result<(), CatalogError> {
        let result = sqlx::query(
            "UPDATE videos SET frames_lost = frames_lost + $2, lost_ms = lost_ms + $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(frames)
        .bind(lost_ms)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        require_video(id, result.rows_affected())
    }

    /// Sets the storage key of the video's thumbnail.
    pub async fn set_thumbnail(&self, id: VideoId, key: &str) -> Result<(), CatalogError> {
        let result = sqlx::query("UPDATE videos SET thumbnail = $2, updated_at = $3 WHERE id = $1")
            .bind(id.as_str())
            .bind(key)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        require_video(id, result.rows_affected())
    }

    /// One video, whatever its visibility.
    pub async fn video(&self, id: VideoId) -> Result<Option<Video>, CatalogError> {
        let row = sqlx::query(&format!("SELECT {VIDEO_COLUMNS} FROM videos v WHERE v.id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(video_from_row).transpose()
    }

    /// One page of videos matching `query`: ranked by relevance when `query.q` has words,
    /// otherwise newest first. Only public videos unless `include_private` (then unlisted and
    /// private ones too).
    pub async fn list(&self, query: &VideoQuery) -> Result<VideoPage, CatalogError> {
        let statements = search::list_statements(self.dialect, query)?;
        let rows = statements.page_args.query(&statements.page_sql).fetch_all(&self.pool).await?;
        // A page that is not full is the last one, so it tells the total (unless it is empty
        // because the offset is past the end).
        let last_page = rows.len() < statements.limit as usize && (!rows.is_empty() || statements.offset == 0);
        let total = if last_page {
            i64::from(statements.offset) + rows.len() as i64
        } else {
            statements.count_args.query(&statements.count_sql).fetch_one(&self.pool).await?.try_get(0)?
        };
        Ok(VideoPage {
            videos: rows.iter().map(video_from_row).collect::<Result<_, _>>()?,
            total,
            limit: statements.limit,
            offset: statements.offset,
        })
    }

    /// Applies a user's edit after checking it (see [`VideoPatch`]); `None` if there is no such
    /// video. Invalid values are refused with [`CatalogError::Invalid`].
    pub async fn update(&self, id: VideoId, patch: &VideoPatch) -> Result<Option<Video>, CatalogError> {
        let tags = patch.tags.as_deref().map(normalized_tags).transpose()?;
        let mut args = Bindings::default();
        let id_placeholder = args.push(id.as_str());
        let mut assignments = Vec::new();
        if let Some(title) = &patch.title {
            assignments.push(format!("title = {}", args.push(checked_title(title)?)));
        }
        if let Some(description) = &patch.description {
            check_description(description)?;
            assignments.push(format!("description = {}", args.push(description.as_str())));
        }
        if let Some(tags) = &tags {
            assignments.push(format!("tags = {}", args.push(joined_tags(tags))));
        }
        if let Some(visibility) = patch.visibility {
            assignments.push(format!("visibility = {}", args.push(visibility.as_str())));
        }
        if assignments.is_empty() {
            return self.video(id).await;
        }
        assignments.push(format!("updated_at = {}", args.push(now_ms())));
        let sql = format!("UPDATE videos SET {} WHERE id = {id_placeholder}", assignments.join(", "));
        let mut tx = self.pool.begin().await?;
        if args.query(&sql).execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(None);
        }
        if let Some(tags) = &tags {
            sqlx::query("DELETE FROM video_tags WHERE video_id = $1").bind(id.as_str()).execute(&mut *tx).await?;
            let rows: Vec<(&str, &str)> = tags.iter().map(|tag| (id.as_str(), tag.as_str())).collect();
            insert_tags(&mut tx, &rows).await?;
        }
        tx.commit().await?;
        self.video(id).await
    }

    /// Deletes a video with its inits, segments and search entry; `false` if there was none.
    /// (Its files in storage are the caller's to remove.)
    pub async fn delete(&self, id: VideoId) -> Result<bool, CatalogError> {
        let result = sqlx::query("DELETE FROM videos WHERE id = $1").bind(id.as_str()).execute(&self.pool).await?;
        Ok(result.rows_affected() > 0)
    }

    /// Every init of a video, ordered by track, then version.
    pub async fn inits(&self, id: VideoId) -> Result<Vec<InitRow>, CatalogError> {
        let rows =
            sqlx::query("SELECT track, version, info FROM video_inits WHERE video_id = $1 ORDER BY track, version")
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(InitRow {
                    track: row.try_get("track")?,
                    version: row.try_get("version")?,
                    info: row.try_get("info")?,
                })
            })
            .collect()
    }

    /// Every segment of one track of a video, in sequence order.
    pub async fn segments(&self, id: VideoId, track: &str) -> Result<Vec<SegmentRow>, CatalogError> {
        let rows = sqlx::query(
            "SELECT track, sequence, init_version, discontinuity, start_ticks, duration_ticks, timescale, size_bytes,
                 wall_clock_ms
             FROM segments WHERE video_id = $1 AND track = $2 ORDER BY sequence",
        )
        .bind(id.as_str())
        .bind(track)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(segment_from_row).collect()
    }

    /// Every video with `status`, oldest first (at start-up: recordings a crash interrupted).
    pub async fn videos_with_status(&self, status: VideoStatus) -> Result<Vec<Video>, CatalogError> {
        let rows = sqlx::query(&format!(
            "SELECT {VIDEO_COLUMNS} FROM videos v WHERE v.status = $1 ORDER BY v.created_at, v.id"
        ))
        .bind(status.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(video_from_row).collect()
    }

    /// Up to `limit` ready videos, oldest first, as (id, created_at_ms, size_bytes): what the
    /// retention sweeper deletes first.
    pub async fn ready_oldest_first(&self, limit: u32) -> Result<Vec<(VideoId, i64, i64)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, created_at, size_bytes FROM videos WHERE status = $1 ORDER BY created_at, id LIMIT $2",
        )
        .bind(VideoStatus::Ready.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((parse_id(row.try_get("id")?)?, row.try_get("created_at")?, row.try_get("size_bytes")?)))
            .collect()
    }

    /// Total size of every video's segments.
    pub async fn total_size_bytes(&self) -> Result<i64, CatalogError> {
        Ok(sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM videos")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Closes every connection (waits for those in use to be returned). SQLite first refreshes
    /// its planner statistics if the data changed a lot.
    pub async fn close(&self) {
        if self.dialect == Dialect::Sqlite {
            if let Err(error) = sqlx::query(SQLITE_OPTIMIZE).execute(&self.pool).await {
                tracing::warn!(%error, "catalog: PRAGMA optimize failed");
            }
        }
        self.pool.close().await;
    }
}

/// Inserts every column of `videos`, and their tags into `video_tags`, with one statement each.
async fn insert_videos(connection: &mut AnyConnection, videos: &[Video]) -> Result<(), sqlx::Error> {
    let mut args = Bindings::default();
    let mut rows = Vec::with_capacity(videos.len());
    for video in videos {
        let values = [
            args.push(video.id.as_str()),
            args.push(video.title.as_str()),
            args.push(video.description.as_str()),
            args.push(joined_tags(&video.tags)),
            args.push(video.visibility.as_str()),
            args.push(video.status.as_str()),
            args.push(video.error.as_deref()),
            args.push(video.stream.as_str()),
            args.push(video.duration_ms),
            args.push(video.size_bytes),
            args.push(video.thumbnail.as_deref()),
            args.push(video.created_at_ms),
            args.push(video.ended_at_ms),
            args.push(video.updated_at_ms),
            args.push(video.frames_lost),
            args.push(video.lost_ms),
            args.push(video.source.as_str()),
        ];
        rows.push(format!("({})", values.join(", ")));
    }
    let sql = format!(
        "INSERT INTO videos (id, title, description, tags, visibility, status, error, stream, duration_ms, size_bytes,
             thumbnail, created_at, ended_at, updated_at, frames_lost, lost_ms, source)
         VALUES {}",
        rows.join(", ")
    );
    args.query(&sql).execute(&mut *connection).await?;
    let tags: Vec<(&str, &str)> =
        videos.iter().flat_map(|video| video.tags.iter().map(|tag| (video.id.as_str(), tag.as_str()))).collect();
    insert_tags(connection, &tags).await
}

/// Adds (video id, tag) rows to `video_tags` (the tag index behind [`VideoQuery::tag`]), in
/// one statement.
async fn insert_tags(connection: &mut AnyConnection, tags: &[(&str, &str)]) -> Result<(), sqlx::Error> {
    if tags.is_empty() {
        return Ok(());
    }
    let mut args = Bindings::default();
    let rows: Vec<String> =
        tags.iter().map(|&(video_id, tag)| format!("({}, {})", args.push(video_id), args.push(tag))).collect();
    let sql = format!("INSERT INTO video_tags (video_id, tag) VALUES {}", rows.join(", "));
    args.query(&sql).execute(connection).await?;
    Ok(())
}

fn video_from_row(row: &AnyRow) -> Result<Video, CatalogError> {
    let stored_text = |column: &str| -> Result<String, CatalogError> { Ok(row.try_get(column)?) };
    Ok(Video {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        tags: split_tags(&stored_text("tags")?),
        visibility: stored_text("visibility")?.parse().map_err(corrupt)?,
        status: stored_text("status")?.parse().map_err(corrupt)?,
        error: row.try_get("error")?,
        stream: row.try_get("stream")?,
        duration_ms: row.try_get("duration_ms")?,
        size_bytes: row.try_get("size_bytes")?,
        thumbnail: row.try_get("thumbnail")?,
        created_at_ms: row.try_get("created_at")?,
        ended_at_ms: row.try_get("ended_at")?,
        updated_at_ms: row.try_get("updated_at")?,
        frames_lost: row.try_get("frames_lost")?,
        lost_ms: row.try_get("lost_ms")?,
        source: stored_text("source")?.parse().map_err(corrupt)?,
    })
}

fn segment_from_row(row: &AnyRow) -> Result<SegmentRow, CatalogError> {
    Ok(SegmentRow {
        track: row.try_get("track")?,
        sequence: row.try_get("sequence")?,
        init_version: row.try_get("init_version")?,
        discontinuity: row.try_get::<i64, _>("discontinuity")? != 0,
        start_ticks: row.try_get("start_ticks")?,
        duration_ticks: row.try_get("duration_ticks")?,
        timescale: row.try_get("timescale")?,
        size_bytes: row.try_get("size_bytes")?,
        wall_clock_ms: row.try_get("wall_clock_ms")?,
    })
}

fn parse_id(text: String) -> Result<VideoId, CatalogError> {
    VideoId::parse(&text).ok_or_else(|| CatalogError::Corrupt(format!("{text:?} is not a video id")))
}

/// A stored enum value that does not parse.
fn corrupt(error: CatalogError) -> CatalogError {
    CatalogError::Corrupt(error.to_string())
}

/// A foreign-key failure on a write for video `id` means there is no such video.
fn missing_video_as(id: VideoId, error: sqlx::Error) -> CatalogError {
    match error {
        sqlx::Error::Database(error) if error.is_foreign_key_violation() => CatalogError::NoSuchVideo(id),
        error => error.into(),
    }
}

fn require_video(id: VideoId, rows_affected: u64) -> Result<(), CatalogError> {
    if rows_affected == 0 {
        Err(CatalogError::NoSuchVideo(id))
    } else {
        Ok(())
    }
}

pub(crate) use rill_media::wallclock::unix_ms as now_ms;

fn sqlite_target(url: &str) -> SqliteTarget {
    let rest = url.strip_prefix("sqlite:").unwrap_or(url);
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path == ":memory:" {
        SqliteTarget::Memory
    } else {
        SqliteTarget::File(PathBuf::from(path))
    }
}

/// `path` for a `sqlite://` URL: every byte but unreserved ones and `/` percent-encoded
/// (sqlx decodes it again), so spaces, `?` and `#` in file names survive.
fn percent_encoded_path(path: &Path) -> String {
    path.as_os_str().as_encoded_bytes().iter().fold(String::new(), |mut encoded, &byte| {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
        encoded
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_files_or_memory() {
        assert!(matches!(sqlite_target("sqlite::memory:"), SqliteTarget::Memory));
        assert!(matches!(sqlite_target("sqlite://:memory:"), SqliteTarget::Memory));
        for (url, path) in [
            ("sqlite://data/rill.db", "data/rill.db"),
            ("sqlite:data/rill.db", "data/rill.db"),
            ("sqlite:///var/lib/rill/rill.db", "/var/lib/rill/rill.db"),
        ] {
            assert!(matches!(sqlite_target(url), SqliteTarget::File(p) if p == Path::new(path)), "{url}");
        }
        assert_eq!(percent_encoded_path(Path::new("/a b/c?#%.db")), "/a%20b/c%3F%23%25.db");
    }

    #[tokio::test]
    async fn other_schemes_are_refused_without_echoing_the_url() {
        let error = Catalog::connect("mysql://root:secret@localhost/rill").await.unwrap_err();
        assert!(matches!(&error, CatalogError::UnsupportedUrl(scheme) if scheme == "mysql"));
        assert!(!error.to_string().contains("secret"));
    }

    #[tokio::test]
    async fn in_memory_catalog_keeps_its_data_and_has_fts5() {
        let catalog = Catalog::connect("sqlite::memory:").await.unwrap();
        let id = VideoId::generate();
        let new =
            NewVideo { id, title: "Zebra crossing", stream: "live", visibility: Visibility::Public, created_at_ms: 1 };
        catalog.create_video(&new).await.unwrap();
        let page = catalog.list(&VideoQuery { q: Some("zeb".into()), ..VideoQuery::default() }).await.unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.videos[0].id, id.as_str());
        assert!(matches!(catalog.create_video(&new).await, Err(CatalogError::VideoExists(_))));
        catalog.close().await;
    }
}
