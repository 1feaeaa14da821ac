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

use crate::rollup::{view_contributions, Deltas, RollupKey, Tally, DAY_MS};
use crate::score::Outcome;
use crate::session::{Protocol, SessionRecord};
use rill_vod::catalog::{migrate_set, Arg, Bindings, CatalogError, Dialect, Migration, Step};
use sqlx::AnyPool;
use std::collections::HashMap;

/// Bound values per statement on PostgreSQL (its limit is 65 535).
const POSTGRES_VALUES_PER_STATEMENT: usize = 16_000;
/// Bound values per statement on SQLite (its limit is 32 766). They are anonymous
/// ([`Bindings::positional`]): with numbered ones, binding cost grows with the square of
/// their number (`sqlite3_bind_parameter_name` was 9 % of the server's CPU in a cmcd-load
/// profile at 200 values a statement).
const SQLITE_VALUES_PER_STATEMENT: usize = 4_000;
/// Sessions read per page when the rollups are filled from stored sessions.
const BACKFILL_PAGE: usize = 2_000;
/// The PostgreSQL advisory lock that serializes the analytics writers of all nodes.
const WRITER_LOCK: i64 = 0x7269_6c6c_0001;

fn rows_per_statement(dialect: Dialect, values_per_row: usize) -> usize {
    match dialect {
        Dialect::Sqlite => (SQLITE_VALUES_PER_STATEMENT / values_per_row).max(1),
        Dialect::Postgres => POSTGRES_VALUES_PER_STATEMENT / values_per_row,
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("analytics schema: {0}")]
    Schema(#[from] CatalogError),
    #[error("analytics database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored session {0}: unknown {1} {2:?}")]
    Corrupt(String, &'static str, String),
}

const MIGRATIONS: &[Migration] = &[
    Migration {
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
    },
    Migration {
        version: 2,
        steps: &[
            Step::Both(
                "CREATE TABLE analytics_rollups (
            scope TEXT NOT NULL,
            id TEXT NOT NULL,
            day BIGINT NOT NULL,
            dimension TEXT NOT NULL,
            key TEXT NOT NULL,
            sessions BIGINT NOT NULL,
            playing_ms BIGINT NOT NULL,
            rebuffer_ms BIGINT NOT NULL,
            rebuffer_count BIGINT NOT NULL,
            score_sum DOUBLE PRECISION NOT NULL,
            exits BIGINT NOT NULL,
            failures BIGINT NOT NULL,
            bitrate_sum BIGINT NOT NULL,
            bitrate_n BIGINT NOT NULL,
            dropped_frames BIGINT NOT NULL,
            views BIGINT NOT NULL,
            PRIMARY KEY (scope, id, day, dimension, key)
        )",
            ),
            Step::Both(
                "CREATE TABLE analytics_concurrency_rollups (
                stream TEXT NOT NULL,
                grain BIGINT NOT NULL,
                t BIGINT NOT NULL,
                viewers BIGINT NOT NULL,
                PRIMARY KEY (stream, grain, t)
            )",
            ),
        ],
    },
];

/// The grains (ms) of `analytics_concurrency_rollups`, a minute and an hour: a row holds the
/// most viewers (all nodes summed) of one sample in its minute or hour.
pub const CONCURRENCY_GRAINS: [i64; 2] = [60_000, 3_600_000];

/// The columns of `analytics_rollups`, in the order [`write_rollups`] binds them.
pub(crate) const ROLLUP_COLUMNS: [&str; 16] = [
    "scope",
    "id",
    "day",
    "dimension",
    "key",
    "sessions",
    "playing_ms",
    "rebuffer_ms",
    "rebuffer_count",
    "score_sum",
    "exits",
    "failures",
    "bitrate_sum",
    "bitrate_n",
    "dropped_frames",
    "views",
];

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
        let store = Store { pool, dialect };
        store.backfill_rollups().await?;
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Writes a batch in one transaction: raw reports and samples appended, sessions merged
    /// into their stored rows (read, [`SessionRecord::merge`]d, written back), the rollups moved
    /// by each session's change ([`Deltas`]), and the views that newly qualified.
    pub async fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        if self.dialect == Dialect::Postgres && !batch.sessions.is_empty() {
            // Nodes sharing the database merge sessions one writer at a time: a session that
            // two nodes saw must not be read by both before either wrote it back.
            sqlx::query(&format!("SELECT pg_advisory_xact_lock({WRITER_LOCK})")).execute(&mut *tx).await?;
        }
        let rows_per_statement = |values_per_row| rows_per_statement(self.dialect, values_per_row);
        for chunk in batch.events.chunks(rows_per_statement(4)) {
            let mut b = Bindings::positional(self.dialect);
            let rows: Vec<String> = chunk
                .iter()
                .map(|e| {
                    b.push_row([
                        e.at.into(),
                        e.session_id.as_str().into(),
                        e.kind.as_str().into(),
                        e.data.as_str().into(),
                    ])
                })
                .collect();
            let sql = format!("INSERT INTO analytics_events (at, session_id, kind, data) VALUES {}", rows.join(", "));
            b.into_query(&sql).execute(&mut *tx).await?;
        }
        for chunk in batch.concurrency.chunks(rows_per_statement(9)) {
            let mut b = Bindings::positional(self.dialect);
            let rows: Vec<String> = chunk
                .iter()
                .map(|s| {
                    let [flv, rtmp, srt, webrtc, hls, dash] = s.viewers.map(|v| Arg::from(v as i64));
                    b.push_row([
                        s.stream.as_str().into(),
                        s.t.into(),
                        s.node.as_str().into(),
                        flv,
                        rtmp,
                        srt,
                        webrtc,
                        hls,
                        dash,
                    ])
                })
                .collect();
            let sql = format!(
                "INSERT INTO analytics_concurrency (stream, t, node, flv, rtmp, srt, webrtc, hls, dash) VALUES {} \
                 ON CONFLICT (stream, t, node) DO UPDATE SET flv = excluded.flv, rtmp = excluded.rtmp, \
                 srt = excluded.srt, webrtc = excluded.webrtc, hls = excluded.hls, dash = excluded.dash",
                rows.join(", ")
            );
            b.into_query(&sql).execute(&mut *tx).await?;
        }
        self.roll_up_concurrency(&mut tx, &batch.concurrency).await?;
        if batch.sessions.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        // The latest record of each session (a batch may carry several).
        let mut latest: HashMap<&str, &SessionRecord> = HashMap::with_capacity(batch.sessions.len());
        for s in &batch.sessions {
            latest.insert(s.id.as_str(), s);
        }
        let mut ids: Vec<&str> = latest.keys().copied().collect();
        ids.sort_unstable();
        let mut stored: HashMap<String, SessionRecord> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(rows_per_statement(1)) {
            let mut b = Bindings::positional(self.dialect);
            let list: Vec<String> = chunk.iter().map(|id| b.push(*id)).collect();
            let sql = format!("SELECT {SESSION_COLUMNS} FROM analytics_sessions WHERE id IN ({})", list.join(", "));
            for row in b.into_query(&sql).fetch_all(&mut *tx).await? {
                let record = session_from_row(&row)?;
                stored.insert(record.id.clone(), record);
            }
        }
        let mut deltas = Deltas::default();
        let mut merged = Vec::with_capacity(ids.len());
        let mut new_views = Vec::new();
        for id in ids {
            let newer = latest[id];
            let old = stored.get(id);
            let record = old.map_or_else(|| newer.clone(), |old| old.merge(newer));
            deltas.replace(old, &record);
            if record.view_at.is_some() && old.is_none_or(|o| o.view_at.is_none()) {
                new_views.push(merged.len());
            }
            merged.push(record);
        }
        for chunk in merged.chunks(rows_per_statement(SESSION_COLUMN_COUNT)) {
            let mut b = Bindings::positional(self.dialect);
            let rows: Vec<String> = chunk.iter().map(|s| b.push_row(session_row(s))).collect();
            let set: Vec<String> = SESSION_COLUMNS.split(", ").skip(1).map(|c| format!("{c} = excluded.{c}")).collect();
            let sql = format!(
                "INSERT INTO analytics_sessions ({SESSION_COLUMNS}) VALUES {} ON CONFLICT (id) DO UPDATE SET {}",
                rows.join(", "),
                set.join(", ")
            );
            b.into_query(&sql).execute(&mut *tx).await?;
        }
        // Earlier views first: the hour rule keeps the first view of a visitor, whatever
        // order the sessions ended in.
        new_views.sort_by_key(|&i| merged[i].view_at);
        for i in new_views {
            if let Some(at) = self.insert_view(&mut tx, &merged[i]).await? {
                deltas.add(view_contributions(&merged[i], at));
            }
        }
        write_rollups(&mut tx, self.dialect, &deltas.into_rows()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Recomputes the concurrency rollups of the minutes and hours that got new samples (from
    /// the samples of every node: recomputing, not adding, so nodes writing the same minute
    /// agree).
    async fn roll_up_concurrency(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        samples: &[ConcurrencySample],
    ) -> Result<(), StoreError> {
        let mut touched: Vec<(&str, i64, i64)> = samples
            .iter()
            .flat_map(|s| CONCURRENCY_GRAINS.map(|g| (s.stream.as_str(), g, s.t.div_euclid(g) * g)))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        for (stream, grain, t) in touched {
            let mut b = Bindings::default();
            let (stream, since, until) = (b.push(stream), b.push(t), b.push(t + grain));
            let sql = format!(
                "INSERT INTO analytics_concurrency_rollups (stream, grain, t, viewers) \
                 SELECT {stream}, {grain}, {since}, COALESCE(MAX(v), 0) FROM (SELECT t, SUM(flv + rtmp + srt + webrtc + hls + dash) AS v \
                 FROM analytics_concurrency WHERE stream = {stream} AND t >= {since} AND t < {until} GROUP BY t) s WHERE true \
                 ON CONFLICT (stream, grain, t) DO UPDATE SET viewers = excluded.viewers"
            );
            b.query(&sql).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Records the view of session `s`, unless its visitor viewed the same content in the
    /// hour before; returns when it qualified if it was recorded.
    async fn insert_view(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        s: &SessionRecord,
    ) -> Result<Option<i64>, StoreError> {
        let Some(view_at) = s.view_at else { return Ok(None) };
        let mut b = Bindings::default();
        let (id, stream, video, visitor, at, since) = (
            b.push(s.id.as_str()),
            b.push(s.stream.as_deref()),
            b.push(s.video.as_deref()),
            b.push(s.visitor.as_str()),
            b.push(view_at),
            b.push(view_at - VIEW_DEDUP_MS),
        );
        let sql = format!(
            "INSERT INTO analytics_views (session_id, stream, video, visitor, at) \
             SELECT {id}, {stream}, {video}, {visitor}, {at} WHERE NOT EXISTS (\
             SELECT 1 FROM analytics_views WHERE visitor = {visitor} AND at > {since} AND at <= {at} \
             AND COALESCE(stream, '') = COALESCE({stream}, '') AND COALESCE(video, '') = COALESCE({video}, '')) \
             ON CONFLICT (session_id) DO NOTHING"
        );
        let done = b.query(&sql).execute(&mut **tx).await?;
        Ok((done.rows_affected() > 0).then_some(view_at))
    }

    /// Fills the rollups of a database from before them, from its sessions, views and samples.
    async fn backfill_rollups(&self) -> Result<(), StoreError> {
        let empty = |table: &'static str| async move {
            let sql = format!("SELECT 1 FROM {table} LIMIT 1");
            Ok::<_, StoreError>(sqlx::query(&sql).fetch_optional(&self.pool).await?.is_none())
        };
        if empty("analytics_rollups").await? && !empty("analytics_sessions").await? {
            let mut after = String::new();
            loop {
                let sql = format!(
                    "SELECT {SESSION_COLUMNS} FROM analytics_sessions WHERE id > $1 ORDER BY id LIMIT {BACKFILL_PAGE}"
                );
                let rows = sqlx::query(&sql).bind(after.clone()).fetch_all(&self.pool).await?;
                let Some(last) = rows.last() else { break };
                after = sqlx::Row::try_get(last, 0)?;
                let mut deltas = Deltas::default();
                for row in &rows {
                    deltas.replace(None, &session_from_row(row)?);
                }
                let mut tx = self.pool.begin().await?;
                write_rollups(&mut tx, self.dialect, &deltas.into_rows()).await?;
                tx.commit().await?;
                tracing::info!(sessions = rows.len(), "analytics rollups filled from stored sessions");
            }
            let day = format!("(at / {DAY_MS}) * {DAY_MS}");
            for (scope, id, group) in
                [("video", "video", "video, "), ("stream", "stream", "stream, "), ("all", "''", "")]
            {
                sqlx::query(&format!(
                    "INSERT INTO analytics_rollups ({}) SELECT '{scope}', {id}, {day}, 'viewed', '', COUNT(*), \
                     0, 0, 0, 0, 0, 0, 0, 0, 0, 0 FROM analytics_views WHERE {id} IS NOT NULL GROUP BY {group}{day}",
                    ROLLUP_COLUMNS.join(", ")
                ))
                .execute(&self.pool)
                .await?;
            }
        }
        if empty("analytics_concurrency_rollups").await? && !empty("analytics_concurrency").await? {
            for grain in CONCURRENCY_GRAINS {
                sqlx::query(&format!(
                    "INSERT INTO analytics_concurrency_rollups (stream, grain, t, viewers) \
                     SELECT stream, {grain}, (t / {grain}) * {grain}, MAX(v) FROM (SELECT stream, t, \
                     SUM(flv + rtmp + srt + webrtc + hls + dash) AS v FROM analytics_concurrency GROUP BY stream, t) s \
                     GROUP BY stream, (t / {grain}) * {grain}"
                ))
                .execute(&self.pool)
                .await?;
            }
            tracing::info!("analytics concurrency rollups filled from stored samples");
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

/// Adds rollup deltas (rows in key order, so that concurrent writers lock them in one order).
async fn write_rollups(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    rows: &[(RollupKey, Tally)],
) -> Result<(), StoreError> {
    let add: Vec<String> =
        ROLLUP_COLUMNS[5..].iter().map(|c| format!("{c} = analytics_rollups.{c} + excluded.{c}")).collect();
    for chunk in rows.chunks(rows_per_statement(dialect, ROLLUP_COLUMNS.len())) {
        let mut b = Bindings::positional(dialect);
        let values: Vec<String> = chunk
            .iter()
            .map(|(k, t)| {
                b.push_row([
                    k.scope.as_str().into(),
                    k.id.as_str().into(),
                    k.day.into(),
                    k.dimension.as_str().into(),
                    k.key.as_str().into(),
                    t.sessions.into(),
                    t.playing_ms.into(),
                    t.rebuffer_ms.into(),
                    t.rebuffer_count.into(),
                    t.score_sum.into(),
                    t.exits.into(),
                    t.failures.into(),
                    t.bitrate_sum.into(),
                    t.bitrate_n.into(),
                    t.dropped_frames.into(),
                    t.views.into(),
                ])
            })
            .collect();
        let sql = format!(
            "INSERT INTO analytics_rollups ({}) VALUES {} ON CONFLICT (scope, id, day, dimension, key) DO UPDATE SET {}",
            ROLLUP_COLUMNS.join(", "),
            values.join(", "),
            add.join(", ")
        );
        b.into_query(&sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The columns of `analytics_sessions`, in the order of [`session_row`] and
/// [`session_from_row`].
pub(crate) const SESSION_COLUMNS: &str = "id, stream, video, protocol, started_at, last_seen, ended_at, playing_ms, \
     rebuffer_ms, rebuffer_count, startup_ms, outcome, errors, bitrate_kbps, switches_up, switches_down, \
     dropped_frames, latency_ms, rtt_ms, lost_packets, bytes, visitor, country, device, browser, os, referrer, \
     rendition, watched_lo, watched_hi, view_at, score";
const SESSION_COLUMN_COUNT: usize = 32;

/// A session's values, in the order of [`SESSION_COLUMNS`].
fn session_row(s: &SessionRecord) -> [Arg; SESSION_COLUMN_COUNT] {
    let int = |v: u64| Arg::from(v as i64);
    let opt = |v: Option<u64>| Arg::from(v.map(|v| v as i64));
    [
        s.id.as_str().into(),
        s.stream.as_deref().into(),
        s.video.as_deref().into(),
        s.protocol.as_str().into(),
        s.started_at.into(),
        s.last_seen.into(),
        s.ended_at.into(),
        int(s.playing_ms),
        int(s.rebuffer_ms),
        int(s.rebuffer_count),
        opt(s.startup_ms),
        s.outcome.as_str().into(),
        int(s.errors),
        opt(s.bitrate_kbps),
        int(s.switches_up),
        int(s.switches_down),
        int(s.dropped_frames),
        opt(s.latency_ms),
        opt(s.rtt_ms),
        int(s.lost_packets),
        int(s.bytes),
        s.visitor.as_str().into(),
        s.country.as_deref().into(),
        s.device.as_str().into(),
        s.browser.as_str().into(),
        s.os.as_str().into(),
        s.referrer.as_deref().into(),
        s.rendition.as_deref().into(),
        int(s.watched as u64),
        int((s.watched >> 64) as u64),
        s.view_at.into(),
        s.score.into(),
    ]
}

/// A session read back from a row of [`SESSION_COLUMNS`].
pub(crate) fn session_from_row(row: &sqlx::any::AnyRow) -> Result<SessionRecord, StoreError> {
    use sqlx::Row;
    let u = |v: i64| v.max(0) as u64;
    let opt = |i: usize| -> Result<Option<u64>, sqlx::Error> { Ok(row.try_get::<Option<i64>, _>(i)?.map(u)) };
    let int = |i: usize| -> Result<u64, sqlx::Error> { Ok(u(row.try_get::<i64, _>(i)?)) };
    let id: String = row.try_get(0)?;
    let protocol: String = row.try_get(3)?;
    let outcome: String = row.try_get(11)?;
    let corrupt = |what, v: &str| StoreError::Corrupt(id.clone(), what, v.to_owned());
    Ok(SessionRecord {
        protocol: Protocol::parse(&protocol).ok_or_else(|| corrupt("protocol", &protocol))?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
        id: id.clone(),
        stream: row.try_get(1)?,
        video: row.try_get(2)?,
        started_at: row.try_get(4)?,
        last_seen: row.try_get(5)?,
        ended_at: row.try_get(6)?,
        playing_ms: int(7)?,
        rebuffer_ms: int(8)?,
        rebuffer_count: int(9)?,
        startup_ms: opt(10)?,
        errors: int(12)?,
        bitrate_kbps: opt(13)?,
        switches_up: int(14)?,
        switches_down: int(15)?,
        dropped_frames: int(16)?,
        latency_ms: opt(17)?,
        rtt_ms: opt(18)?,
        lost_packets: int(19)?,
        bytes: int(20)?,
        visitor: row.try_get(21)?,
        country: row.try_get(22)?,
        device: row.try_get(23)?,
        browser: row.try_get(24)?,
        os: row.try_get(25)?,
        referrer: row.try_get(26)?,
        rendition: row.try_get(27)?,
        watched: (row.try_get::<i64, _>(28)? as u64 as u128) | ((row.try_get::<i64, _>(29)? as u64 as u128) << 64),
        view_at: row.try_get(30)?,
        score: row.try_get(31)?,
    })
}
