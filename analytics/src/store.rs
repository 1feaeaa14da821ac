//! The analytics tables in the catalog database (SQLite or PostgreSQL, the same queries):
//! written in batches, one transaction per batch, and read by [`crate::report`].
//!
//! - `analytics_sessions`: one row per session id, upserted while it runs and when it ends.
//!   Two nodes that saw parts of one session (a CMCD `sid` whose requests were balanced over
//!   both) merge into one row: earliest start, latest sighting, the larger of each counter, the
//!   union of the watched buckets. A session is never counted twice.
//! - `analytics_views`: one row per session that qualified as a view, unless the same
//!   visitor viewed the same content in the hour before (PeerTube's rule).
//! - `analytics_concurrency`: every node's viewers by protocol per stream, every 10 s (the
//!   timeline and the peak sum the nodes).
//! - `analytics_events`: the raw player reports, kept `raw_retention_days`.

use crate::session::SessionRecord;
use rill_vod::catalog::{migrate_set, Bindings, CatalogError, Dialect, Migration, Step};
use sqlx::AnyPool;

/// Rows per multi-row INSERT (at most 9 values each for events and samples: far below the
/// limits on bound values).
const ROWS_PER_STATEMENT: usize = 500;
/// The same on SQLite: binding `$n` parameters looks each name up in a linear list
/// (`sqlite3_bind_parameter_name`), so a statement's binding cost grows with the square of its
/// values; 500 rows of events spent most of the writer's time there (cmcd-load profile).
const SQLITE_ROWS_PER_STATEMENT: usize = 50;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("analytics schema: {0}")]
    Schema(#[from] CatalogError),
    #[error("analytics database error: {0}")]
    Database(#[from] sqlx::Error),
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    steps: &[
        Step::Both(
            "CREATE TABLE analytics_sessions (
                id TEXT PRIMARY KEY,
                stream TEXT,
                video TEXT,
                protocol TEXT NOT NULL,
                started_at BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                ended_at BIGINT,
                playing_ms BIGINT NOT NULL,
                rebuffer_ms BIGINT NOT NULL,
                rebuffer_count BIGINT NOT NULL,
                startup_ms BIGINT,
                outcome TEXT NOT NULL,
                errors BIGINT NOT NULL,
                bitrate_kbps BIGINT,
                switches_up BIGINT NOT NULL,
                switches_down BIGINT NOT NULL,
                dropped_frames BIGINT NOT NULL,
                latency_ms BIGINT,
                rtt_ms BIGINT,
                lost_packets BIGINT NOT NULL,
                bytes BIGINT NOT NULL,
                visitor TEXT NOT NULL,
                country TEXT,
                device TEXT NOT NULL,
                browser TEXT NOT NULL,
                os TEXT NOT NULL,
                referrer TEXT,
                rendition TEXT,
                watched_lo BIGINT NOT NULL,
                watched_hi BIGINT NOT NULL,
                view_at BIGINT,
                score DOUBLE PRECISION NOT NULL
            )",
        ),
        Step::Both("CREATE INDEX analytics_sessions_video ON analytics_sessions (video, started_at)"),
        Step::Both("CREATE INDEX analytics_sessions_stream ON analytics_sessions (stream, started_at)"),
        Step::Both("CREATE INDEX analytics_sessions_started ON analytics_sessions (started_at)"),
        Step::Both("CREATE INDEX analytics_sessions_video_views ON analytics_sessions (video, view_at)"),
        Step::Both(
            "CREATE TABLE analytics_views (
                session_id TEXT PRIMARY KEY,
                stream TEXT,
                video TEXT,
                visitor TEXT NOT NULL,
                at BIGINT NOT NULL
            )",
        ),
        Step::Both("CREATE INDEX analytics_views_video ON analytics_views (video, at)"),
        Step::Both("CREATE INDEX analytics_views_stream ON analytics_views (stream, at)"),
        Step::Both("CREATE INDEX analytics_views_visitor ON analytics_views (visitor, at)"),
        Step::Both(
            "CREATE TABLE analytics_concurrency (
                stream TEXT NOT NULL,
                t BIGINT NOT NULL,
                node TEXT NOT NULL,
                flv BIGINT NOT NULL,
                rtmp BIGINT NOT NULL,
                srt BIGINT NOT NULL,
                webrtc BIGINT NOT NULL,
                hls BIGINT NOT NULL,
                dash BIGINT NOT NULL,
                PRIMARY KEY (stream, t, node)
            )",
        ),
        Step::Both(
            "CREATE TABLE analytics_events (
                at BIGINT NOT NULL,
                session_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                data TEXT NOT NULL
            )",
        ),
        Step::Both("CREATE INDEX analytics_events_at ON analytics_events (at)"),
    ],
}];

/// A raw player report, as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub at: i64,
    pub session_id: String,
    /// `request` (request-mode CMCD) or the event type (`ps`, `t`, `e`, …).
    pub kind: String,
    /// The CMCD dictionary as sent.
    pub data: String,
}

/// One node's viewers of one stream at one sampling time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConcurrencySample {
    pub stream: String,
    /// Unix ms, a multiple of the sampling period.
    pub t: i64,
    pub node: String,
    /// By protocol, in the order of [`Protocol::ALL`].
    pub viewers: [u64; 6],
}

/// What one write carries.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub events: Vec<RawEvent>,
    pub sessions: Vec<SessionRecord>,
    pub concurrency: Vec<ConcurrencySample>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.sessions.is_empty() && self.concurrency.is_empty()
    }
}

/// The analytics tables.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
}

/// How long after a view the same visitor's next session of the same content is no new view.
pub const VIEW_DEDUP_MS: i64 = 3_600_000;

impl Store {
    /// The store in the catalog database behind `pool`, its tables created or migrated.
    pub async fn open(pool: AnyPool, dialect: Dialect) -> Result<Store, StoreError> {
        migrate_set(&pool, dialect, "analytics_migrations", MIGRATIONS).await?;
        Ok(Store { pool, dialect })
    }

    /// The larger of two values in this dialect's SQL.
    fn greatest(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "max",
            Dialect::Postgres => "GREATEST",
        }
    }

    fn least(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "min",
            Dialect::Postgres => "LEAST",
        }
    }

    /// Writes a batch in one transaction.
    pub async fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let rows_per_statement = match self.dialect {
            Dialect::Sqlite => SQLITE_ROWS_PER_STATEMENT,
            Dialect::Postgres => ROWS_PER_STATEMENT,
        };
        for chunk in batch.events.chunks(rows_per_statement) {
            let mut b = Bindings::default();
            let rows: Vec<String> = chunk
                .iter()
                .map(|e| {
                    format!(
                        "({}, {}, {}, {})",
                        b.push(e.at),
                        b.push(e.session_id.as_str()),
                        b.push(e.kind.as_str()),
                        b.push(e.data.as_str())
                    )
                })
                .collect();
            let sql = format!("INSERT INTO analytics_events (at, session_id, kind, data) VALUES {}", rows.join(", "));
            b.query(&sql).execute(&mut *tx).await?;
        }
        for chunk in batch.concurrency.chunks(rows_per_statement) {
            let mut b = Bindings::default();
            let rows: Vec<String> = chunk
                .iter()
                .map(|s| {
                    let mut values = vec![b.push(s.stream.as_str()), b.push(s.t), b.push(s.node.as_str())];
                    values.extend(s.viewers.iter().map(|&v| b.push(v as i64)));
                    format!("({})", values.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO analytics_concurrency (stream, t, node, flv, rtmp, srt, webrtc, hls, dash) VALUES {} \
                 ON CONFLICT (stream, t, node) DO UPDATE SET flv = excluded.flv, rtmp = excluded.rtmp, \
                 srt = excluded.srt, webrtc = excluded.webrtc, hls = excluded.hls, dash = excluded.dash",
                rows.join(", ")
            );
            b.query(&sql).execute(&mut *tx).await?;
        }
        // Earlier views first: the hour rule keeps the first view of a visitor, whatever
        // order the sessions ended in.
        let mut sessions: Vec<&SessionRecord> = batch.sessions.iter().collect();
        sessions.sort_by_key(|s| (s.view_at.is_none(), s.view_at));
        for session in sessions {
            self.upsert_session(&mut tx, session).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn upsert_session(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        s: &SessionRecord,
    ) -> Result<(), StoreError> {
        let (max, min) = (self.greatest(), self.least());
        let mut b = Bindings::default();
        let values = [
            b.push(s.id.as_str()),
            b.push(s.stream.as_deref()),
            b.push(s.video.as_deref()),
            b.push(s.protocol.as_str()),
            b.push(s.started_at),
            b.push(s.last_seen),
            b.push(s.ended_at),
            b.push(s.playing_ms as i64),
            b.push(s.rebuffer_ms as i64),
            b.push(s.rebuffer_count as i64),
            b.push(s.startup_ms.map(|v| v as i64)),
            b.push(s.outcome.as_str()),
            b.push(s.errors as i64),
            b.push(s.bitrate_kbps.map(|v| v as i64)),
            b.push(s.switches_up as i64),
            b.push(s.switches_down as i64),
            b.push(s.dropped_frames as i64),
            b.push(s.latency_ms.map(|v| v as i64)),
            b.push(s.rtt_ms.map(|v| v as i64)),
            b.push(s.lost_packets as i64),
            b.push(s.bytes as i64),
            b.push(s.visitor.as_str()),
            b.push(s.country.as_deref()),
            b.push(s.device.as_str()),
            b.push(s.browser.as_str()),
            b.push(s.os.as_str()),
            b.push(s.referrer.as_deref()),
            b.push(s.rendition.as_deref()),
            b.push(s.watched as u64 as i64),
            b.push((s.watched >> 64) as u64 as i64),
            b.push(s.view_at),
            b.push(s.score),
        ];
        let larger = |c: &str| format!("{c} = {max}(analytics_sessions.{c}, excluded.{c})");
        let known = |c: &str| format!("{c} = COALESCE(excluded.{c}, analytics_sessions.{c})");
        let mut set = vec![
            format!("started_at = {min}(analytics_sessions.started_at, excluded.started_at)"),
            "stream = COALESCE(analytics_sessions.stream, excluded.stream)".to_owned(),
            "video = COALESCE(analytics_sessions.video, excluded.video)".to_owned(),
            "view_at = COALESCE(analytics_sessions.view_at, excluded.view_at)".to_owned(),
            "watched_lo = analytics_sessions.watched_lo | excluded.watched_lo".to_owned(),
            "watched_hi = analytics_sessions.watched_hi | excluded.watched_hi".to_owned(),
            "outcome = CASE WHEN analytics_sessions.outcome = 'played' THEN 'played' ELSE excluded.outcome END"
                .to_owned(),
            "score = excluded.score".to_owned(),
        ];
        for c in [
            "last_seen",
            "playing_ms",
            "rebuffer_ms",
            "rebuffer_count",
            "errors",
            "switches_up",
            "switches_down",
            "dropped_frames",
            "lost_packets",
            "bytes",
        ] {
            set.push(larger(c));
        }
        for c in ["ended_at", "startup_ms", "bitrate_kbps", "latency_ms", "rtt_ms", "country", "referrer", "rendition"]
        {
            set.push(known(c));
        }
        let sql = format!(
            "INSERT INTO analytics_sessions (id, stream, video, protocol, started_at, last_seen, ended_at, \
             playing_ms, rebuffer_ms, rebuffer_count, startup_ms, outcome, errors, bitrate_kbps, switches_up, \
             switches_down, dropped_frames, latency_ms, rtt_ms, lost_packets, bytes, visitor, country, device, \
             browser, os, referrer, rendition, watched_lo, watched_hi, view_at, score) VALUES ({}) \
             ON CONFLICT (id) DO UPDATE SET {}",
            values.join(", "),
            set.join(", ")
        );
        b.query(&sql).execute(&mut **tx).await?;
        if let Some(at) = s.view_at {
            let mut b = Bindings::default();
            let (id, stream, video, visitor, at, since) = (
                b.push(s.id.as_str()),
                b.push(s.stream.as_deref()),
                b.push(s.video.as_deref()),
                b.push(s.visitor.as_str()),
                b.push(at),
                b.push(at - VIEW_DEDUP_MS),
            );
            let sql = format!(
                "INSERT INTO analytics_views (session_id, stream, video, visitor, at) \
                 SELECT {id}, {stream}, {video}, {visitor}, {at} WHERE NOT EXISTS (\
                 SELECT 1 FROM analytics_views WHERE visitor = {visitor} AND at > {since} AND at <= {at} \
                 AND COALESCE(stream, '') = COALESCE({stream}, '') AND COALESCE(video, '') = COALESCE({video}, '')) \
                 ON CONFLICT (session_id) DO NOTHING"
            );
            b.query(&sql).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Deletes raw events older than `before` (unix ms); returns how many.
    pub async fn purge_events(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM analytics_events WHERE at < $1").bind(before).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Raw events kept (for tests and the overview).
    pub async fn event_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM analytics_events").fetch_one(&self.pool).await?)
    }
}
