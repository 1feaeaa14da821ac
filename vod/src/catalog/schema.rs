//! The catalog's schema and its migration runner.
//!
//! Every schema change is a numbered [`Migration`]: an ordered list of statements, each for both
//! dialects or for one [`Dialect`]. The runner records applied versions in
//! `schema_migrations(version, applied_at)` and applies the missing ones in order, each in its
//! own transaction. Re-running is a no-op, and a database whose version is newer than this
//! binary knows is refused rather than guessed at. A released migration is never edited: a
//! change is a new migration.
//!
//! 1. `videos`, `video_inits`, `segments` and the text search.
//! 2. `video_tags(video_id, tag)`: a video's tags one per row (filled from `videos.tags`, which
//!    keeps them joined by spaces for display and text search), so listing by tag is an index
//!    lookup; the catalog writes both in the same transaction. And indexes led by `visibility`
//!    for public lists and their counts.
//! 3. `videos.frames_lost` and `videos.lost_ms`: what a recording lost (never silently).
//! 4. `videos.source` (`recording` or `upload`) and `uploads`: tus uploads in progress (their
//!    length, the offset stored so far, the metadata the uploader sent, when they expire) and
//!    what became of them (`state`, `error`, the whole file's `sha1`, the `video_id` they
//!    become).
//! 5. `video_captions(video_id, lang, label, cues, size_bytes, created_at)`: the caption files
//!    of a video, one per language (the files are `<id>/captions/<lang>.vtt` in storage).
//!
//! The tables are the same in both dialects except for the text search:
//! * SQLite: `videos` has an `INTEGER PRIMARY KEY` (`seq`, a stable rowid; `id` is `UNIQUE`)
//!   that keys an external-content FTS5 table `videos_fts(title, description, tags)`, kept in
//!   sync by triggers on `videos`. `segments` is `WITHOUT ROWID` (clustered by its primary
//!   key, so reading one track of a video is one range scan).
//! * PostgreSQL: `videos.search` is a generated, stored `tsvector` (title weight A, tags B,
//!   description C) with a GIN index.

use super::{now_ms, CatalogError, Dialect};
use sqlx::AnyPool;

/// One statement of a migration, and which dialects run it.
pub enum Step {
    Both(&'static str),
    Sqlite(&'static str),
    Postgres(&'static str),
}

/// One schema change.
pub struct Migration {
    pub version: i64,
    /// Run in order; each dialect skips the other's steps.
    pub steps: &'static [Step],
}

impl Migration {
    fn statements(&self, dialect: Dialect) -> impl Iterator<Item = &'static str> + '_ {
        self.steps.iter().filter_map(move |step| match (step, dialect) {
            (Step::Both(sql), _) | (Step::Sqlite(sql), Dialect::Sqlite) | (Step::Postgres(sql), Dialect::Postgres) => {
                Some(*sql)
            }
            _ => None,
        })
    }
}

/// The `videos` columns after the key, identical in both dialects.
macro_rules! video_columns {
    () => {
        "title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '',
        visibility TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
        status TEXT NOT NULL CHECK (status IN ('recording', 'ready', 'failed')),
        error TEXT,
        stream TEXT NOT NULL,
        duration_ms BIGINT NOT NULL DEFAULT 0,
        size_bytes BIGINT NOT NULL DEFAULT 0,
        thumbnail TEXT,
        created_at BIGINT NOT NULL,
        ended_at BIGINT,
        updated_at BIGINT NOT NULL"
    };
}

macro_rules! segments_table {
    () => {
        "CREATE TABLE segments (
            video_id TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
            track TEXT NOT NULL,
            sequence BIGINT NOT NULL,
            init_version BIGINT NOT NULL,
            discontinuity BIGINT NOT NULL,
            start_ticks BIGINT NOT NULL,
            duration_ticks BIGINT NOT NULL,
            timescale BIGINT NOT NULL,
            size_bytes BIGINT NOT NULL,
            wall_clock_ms BIGINT NOT NULL,
            PRIMARY KEY (video_id, track, sequence)
        )"
    };
}

/// The FTS5 row of a video, as the trigger bodies write it (`$row` is `new` or `old`).
macro_rules! fts_values {
    ($row:literal) => {
        concat!($row, ".seq, ", $row, ".title, ", $row, ".description, ", $row, ".tags")
    };
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        steps: &[
            Step::Sqlite(concat!(
                "CREATE TABLE videos (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, ",
                video_columns!(),
                ")"
            )),
            Step::Sqlite(
                "CREATE VIRTUAL TABLE videos_fts USING fts5(
                    title, description, tags,
                    content = 'videos', content_rowid = 'seq',
                    tokenize = 'unicode61 remove_diacritics 2'
                )",
            ),
            Step::Sqlite(concat!(
                "CREATE TRIGGER videos_fts_insert AFTER INSERT ON videos BEGIN
                    INSERT INTO videos_fts (rowid, title, description, tags) VALUES (",
                fts_values!("new"),
                "); END"
            )),
            Step::Sqlite(concat!(
                "CREATE TRIGGER videos_fts_delete AFTER DELETE ON videos BEGIN
                    INSERT INTO videos_fts (videos_fts, rowid, title, description, tags) VALUES ('delete', ",
                fts_values!("old"),
                "); END"
            )),
            Step::Sqlite(concat!(
                "CREATE TRIGGER videos_fts_update AFTER UPDATE OF title, description, tags ON videos BEGIN
                    INSERT INTO videos_fts (videos_fts, rowid, title, description, tags) VALUES ('delete', ",
                fts_values!("old"),
                ");
                    INSERT INTO videos_fts (rowid, title, description, tags) VALUES (",
                fts_values!("new"),
                "); END"
            )),
            Step::Sqlite(concat!(segments_table!(), " WITHOUT ROWID")),
            Step::Postgres(concat!(
                "CREATE TABLE videos (id TEXT PRIMARY KEY, ",
                video_columns!(),
                ", search tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('simple', title), 'A')
                    || setweight(to_tsvector('simple', tags), 'B')
                    || setweight(to_tsvector('simple', description), 'C')
                ) STORED)"
            )),
            Step::Postgres("CREATE INDEX videos_search ON videos USING GIN (search)"),
            Step::Postgres(segments_table!()),
            Step::Both("CREATE INDEX videos_by_created ON videos (created_at, id)"),
            Step::Both("CREATE INDEX videos_by_stream ON videos (stream, created_at)"),
            Step::Both("CREATE INDEX videos_by_status ON videos (status, created_at)"),
            Step::Both(
                "CREATE TABLE video_inits (
                    video_id TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
                    track TEXT NOT NULL,
                    version BIGINT NOT NULL,
                    info TEXT NOT NULL,
                    PRIMARY KEY (video_id, track, version)
                )",
            ),
        ],
    },
    // Its statements tolerate objects that already exist: development builds created some of
    // them as part of version 1.
    Migration {
        version: 2,
        steps: &[
            // Public lists (`visibility = 'public'`, newest first) and their counts.
            Step::Both("CREATE INDEX IF NOT EXISTS videos_by_visibility ON videos (visibility, created_at)"),
            Step::Both("DROP INDEX IF EXISTS videos_by_stream"),
            Step::Both("CREATE INDEX videos_by_stream ON videos (stream, visibility, created_at)"),
            Step::Both(
                "CREATE TABLE IF NOT EXISTS video_tags (
                    video_id TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
                    tag TEXT NOT NULL,
                    PRIMARY KEY (video_id, tag)
                )",
            ),
            Step::Both("CREATE INDEX IF NOT EXISTS video_tags_by_tag ON video_tags (tag, video_id)"),
            // Existing tags, split at the spaces that join them.
            Step::Sqlite(
                "WITH RECURSIVE split (video_id, tag, rest) AS (
                    SELECT id, '', tags || ' ' FROM videos WHERE tags <> ''
                    UNION ALL
                    SELECT video_id, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
                    FROM split WHERE rest <> ''
                )
                INSERT INTO video_tags (video_id, tag) SELECT DISTINCT video_id, tag FROM split WHERE tag <> ''
                ON CONFLICT DO NOTHING",
            ),
            Step::Postgres(
                "INSERT INTO video_tags (video_id, tag)
                 SELECT DISTINCT videos.id, tag FROM videos, unnest(string_to_array(videos.tags, ' ')) AS tag
                 WHERE tag <> ''
                 ON CONFLICT DO NOTHING",
            ),
        ],
    },
    Migration {
        version: 3,
        steps: &[
            Step::Both("ALTER TABLE videos ADD COLUMN frames_lost BIGINT NOT NULL DEFAULT 0"),
            Step::Both("ALTER TABLE videos ADD COLUMN lost_ms BIGINT NOT NULL DEFAULT 0"),
        ],
    },
    Migration {
        version: 4,
        steps: &[
            Step::Both(
                "ALTER TABLE videos ADD COLUMN source TEXT NOT NULL DEFAULT 'recording'
                 CHECK (source IN ('recording', 'upload'))",
            ),
            Step::Both(
                "CREATE TABLE uploads (
                    id TEXT PRIMARY KEY,
                    video_id TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('uploading', 'processing', 'ready', 'failed')),
                    error TEXT,
                    length BIGINT NOT NULL,
                    upload_offset BIGINT NOT NULL DEFAULT 0,
                    title TEXT NOT NULL,
                    description TEXT NOT NULL DEFAULT '',
                    tags TEXT NOT NULL DEFAULT '',
                    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
                    filename TEXT NOT NULL DEFAULT '',
                    sha1 TEXT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL
                )",
            ),
            Step::Both("CREATE INDEX uploads_by_state ON uploads (state, expires_at)"),
        ],
    },
    Migration {
        version: 5,
        steps: &[Step::Both(
            "CREATE TABLE video_captions (
                video_id TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
                lang TEXT NOT NULL,
                label TEXT NOT NULL,
                cues BIGINT NOT NULL,
                size_bytes BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (video_id, lang)
            )",
        )],
    },
];

/// The newest schema version this binary knows.
#[cfg(test)]
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// Brings the catalog's tables to [`latest_version`].
pub(crate) async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<(), CatalogError> {
    migrate_set(pool, dialect, CATALOG_LEDGER, MIGRATIONS).await
}

/// The table that records the catalog's applied migrations.
const CATALOG_LEDGER: &str = "schema_migrations";

/// Brings one set of tables to its newest version, recording applied versions in the table
/// `ledger` (one per set: the catalog's, and those of other subsystems that keep their tables
/// in the catalog database, such as analytics). `migrations` are numbered from 1.
pub async fn migrate_set(
    pool: &AnyPool,
    dialect: Dialect,
    ledger: &'static str,
    migrations: &[Migration],
) -> Result<(), CatalogError> {
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {ledger} (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
    ))
    .execute(pool)
    .await?;
    let current = current_version(pool, ledger).await?;
    let known = migrations.last().map_or(0, |migration| migration.version);
    if current > known {
        return Err(CatalogError::SchemaTooNew { found: current, known });
    }
    for migration in migrations.iter().filter(|migration| migration.version > current) {
        apply(pool, dialect, ledger, migration).await?;
    }
    Ok(())
}

/// The highest applied version of a set, 0 for a new database.
pub(crate) async fn current_version(pool: &AnyPool, ledger: &'static str) -> Result<i64, CatalogError> {
    let version: Option<i64> =
        sqlx::query_scalar(&format!("SELECT MAX(version) FROM {ledger}")).fetch_one(pool).await?;
    Ok(version.unwrap_or(0))
}

/// Applies one migration in a transaction. Its version row is inserted first: that takes the
/// write lock, and if another process is applying the same migration concurrently, the insert
/// waits for it and then fails as a duplicate, which means the migration is already there.
async fn apply(
    pool: &AnyPool,
    dialect: Dialect,
    ledger: &'static str,
    migration: &Migration,
) -> Result<(), CatalogError> {
    let failed = |source| CatalogError::Migration { version: migration.version, source };
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query(&format!("INSERT INTO {ledger} (version, applied_at) VALUES ($1, $2)"))
        .bind(migration.version)
        .bind(now_ms())
        .execute(&mut *tx)
        .await;
    match claimed {
        Err(sqlx::Error::Database(error)) if error.is_unique_violation() => return Ok(()),
        claimed => claimed.map_err(failed)?,
    };
    for statement in migration.statements(dialect) {
        sqlx::query(statement).persistent(false).execute(&mut *tx).await.map_err(failed)?;
    }
    tx.commit().await.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_from_one() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i64 + 1);
        }
        assert_eq!(latest_version(), MIGRATIONS.len() as i64);
    }
}
