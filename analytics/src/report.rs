//! The reports the API serves, read from the [`Store`]: per video (views, uniques, watch
//! time, daily series, retention, countries, devices, traffic sources), per live stream
//! (concurrency timeline, peak, protocols, QoE), the overview, and pages of sessions.
//!
//! Definitions (the README repeats them):
//! - a *session* counts in a period when it started in it; a *view* when it qualified in it;
//! - *unique viewers* = distinct visitors among the period's views;
//! - *watch time* = the sessions' playing time (rebuffering, paused and seeking excluded);
//! - *average view duration* = watch time / views;
//! - *retention* at p % = share of the views whose viewer watched the p-th hundredth;
//! - *peak* = the highest sum over nodes and protocols of one 10 s concurrency sample.

use crate::rollup::{day_of, Aggregate, Dimension, Scope as RollupScope, Tally};
use crate::session::{Protocol, SessionRecord};
use crate::store::{session_from_row, Store, StoreError, CONCURRENCY_GRAINS, SESSION_COLUMNS};
use rill_vod::catalog::Bindings;
use serde::Serialize;
use sqlx::Row;
use std::collections::HashMap;

const DAY_MS: i64 = 86_400_000;
/// Longest period a report covers.
pub const MAX_PERIOD_DAYS: i64 = 366;
/// Most points in a concurrency timeline (longer periods are downsampled, keeping maxima).
pub const TIMELINE_POINTS: i64 = 720;
/// Rows of each breakdown (countries, devices, …) and of the overview's tops.
pub const BREAKDOWN_ROWS: i64 = 20;
/// The concurrency sampling period.
pub const SAMPLE_MS: i64 = 10_000;

/// A request for a report that cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("invalid period {0:?}: use a number followed by h or d (e.g. 24h, 7d, 30d), at most {MAX_PERIOD_DAYS}d")]
    Period(String),
    #[error("invalid {0}: {1}")]
    Filter(&'static str, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ReportError {
    fn from(e: sqlx::Error) -> Self {
        ReportError::Store(StoreError::Database(e))
    }
}

/// The time range of a report: `[since, until)`, unix ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    pub since: i64,
    pub until: i64,
}

impl Period {
    /// `30d`, `24h`, … ending at `now`.
    pub fn parse(text: &str, now: i64) -> Result<Period, ReportError> {
        let bad = || ReportError::Period(text.chars().take(32).collect());
        let (number, unit) = text.split_at(text.len().saturating_sub(1));
        let n: i64 = number.parse().map_err(|_| bad())?;
        let ms = match unit {
            "d" => n.checked_mul(DAY_MS),
            "h" => n.checked_mul(3_600_000),
            _ => None,
        }
        .filter(|&ms| ms > 0 && ms <= MAX_PERIOD_DAYS * DAY_MS)
        .ok_or_else(bad)?;
        Ok(Period { since: now - ms, until: now })
    }
}

/// A row of a breakdown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breakdown {
    pub key: String,
    pub sessions: u64,
    pub watch_time_s: f64,
}

/// Experience over a set of sessions.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Qoe {
    pub sessions: u64,
    pub startup_ms_p50: Option<u64>,
    pub startup_ms_p95: Option<u64>,
    /// Rebuffer time / (playing + rebuffer time), over all the sessions.
    pub rebuffer_ratio: f64,
    pub rebuffer_count: u64,
    /// Mean overall score of the sessions.
    pub score: Option<f64>,
    pub exits_before_start: u64,
    pub failures: u64,
    pub latency_ms_p50: Option<u64>,
    /// Mean time-weighted bitrate.
    pub bitrate_kbps: Option<f64>,
    pub dropped_frames: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VideoSummary {
    pub views: u64,
    pub unique_viewers: u64,
    pub watch_time_s: f64,
    pub average_view_duration_s: f64,
    pub sessions: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DailyPoint {
    pub date: String,
    pub views: u64,
    pub unique_viewers: u64,
    pub watch_time_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetentionPoint {
    pub percent: u32,
    /// Share (0–1) of the views that watched this hundredth.
    pub share: f64,
}

/// `GET /api/v1/videos/<id>/analytics`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VideoReport {
    pub video: String,
    pub period: Period,
    pub summary: VideoSummary,
    pub daily: Vec<DailyPoint>,
    pub retention: Vec<RetentionPoint>,
    pub countries: Vec<Breakdown>,
    pub devices: Vec<Breakdown>,
    pub browsers: Vec<Breakdown>,
    pub traffic_sources: Vec<Breakdown>,
    pub protocols: Vec<Breakdown>,
    pub renditions: Vec<Breakdown>,
    pub qoe: Qoe,
}

/// Viewers now by protocol (the field names users rely on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ViewersNow {
    pub flv: u64,
    pub rtmp: u64,
    pub srt: u64,
    pub webrtc: u64,
    pub hls: u64,
    pub dash: u64,
    pub total: u64,
}

impl From<[u64; 6]> for ViewersNow {
    fn from(v: [u64; 6]) -> Self {
        let at = |p: Protocol| v[p.index()];
        ViewersNow {
            flv: at(Protocol::Flv),
            rtmp: at(Protocol::Rtmp),
            srt: at(Protocol::Srt),
            webrtc: at(Protocol::Webrtc),
            hls: at(Protocol::Hls),
            dash: at(Protocol::Dash),
            total: v.iter().sum(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TimelinePoint {
    pub t: i64,
    pub viewers: u64,
}

/// `GET /api/v1/streams/<name>/analytics`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamReport {
    pub stream: String,
    pub period: Period,
    pub viewers_now: ViewersNow,
    pub peak_viewers: u64,
    pub peak_at: Option<i64>,
    pub sessions: u64,
    pub views: u64,
    pub unique_viewers: u64,
    pub watch_time_s: f64,
    /// Viewers over time (every 10 s, or the maximum of each longer step over long periods).
    pub timeline: Vec<TimelinePoint>,
    pub protocols: Vec<Breakdown>,
    pub countries: Vec<Breakdown>,
    pub devices: Vec<Breakdown>,
    pub renditions: Vec<Breakdown>,
    pub qoe: Qoe,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Top {
    pub id: String,
    pub views: u64,
    pub watch_time_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Totals {
    pub sessions: u64,
    pub views: u64,
    pub unique_viewers: u64,
    pub watch_time_s: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreBucket {
    pub from: u32,
    pub to: u32,
    pub sessions: u64,
}

/// `GET /api/v1/analytics/overview`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overview {
    pub period: Period,
    pub totals: Totals,
    pub top_videos: Vec<Top>,
    pub top_streams: Vec<Top>,
    pub protocols: Vec<Breakdown>,
    pub countries: Vec<Breakdown>,
    pub qoe: Qoe,
    /// Sessions by overall score, in fifths.
    pub score_distribution: Vec<ScoreBucket>,
}

/// Filters of `GET /api/v1/analytics/sessions`.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    pub stream: Option<String>,
    pub video: Option<String>,
    pub protocol: Option<Protocol>,
    pub country: Option<String>,
    pub outcome: Option<crate::score::Outcome>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Sessions that started before this one (`started_at:id` from the last page's `next`).
    pub before: Option<(i64, String)>,
    pub limit: usize,
}

/// Most sessions in a page.
pub const MAX_SESSIONS_PAGE: usize = 500;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionPage {
    pub sessions: Vec<SessionRecord>,
    /// The cursor of the next page (`before=`), if there is one.
    pub next: Option<String>,
}

/// A WHERE clause over one content's rows in a period.
struct Scope {
    bindings: Bindings,
    clause: String,
}

impl Scope {
    /// Sessions (`time` = `started_at`) or views (`time` = `at`) of `column = id` in `period`.
    fn new(column: Option<(&'static str, &str)>, time: &str, period: Period) -> Scope {
        let mut bindings = Bindings::default();
        let mut clause =
            format!("{time} >= {} AND {time} < {}", bindings.push(period.since), bindings.push(period.until));
        if let Some((column, id)) = column {
            clause = format!("{column} = {} AND {clause}", bindings.push(id));
        }
        Scope { bindings, clause }
    }
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

/// A period cut into the whole days inside it (`[first, end)`, day starts) and the partial
/// days at its edges.
fn split(period: Period) -> (Option<(i64, i64)>, Vec<Period>) {
    let first_day = day_of(period.since + DAY_MS - 1);
    let end_day = day_of(period.until);
    if first_day < end_day {
        let edges = [Period { since: period.since, until: first_day }, Period { since: end_day, until: period.until }];
        (Some((first_day, end_day)), edges.into_iter().filter(|p| p.since < p.until).collect())
    } else {
        (None, vec![period])
    }
}

/// The step of a period's timeline: a whole number of samples, at most [`TIMELINE_POINTS`] steps.
pub fn timeline_step(period: Period) -> i64 {
    let per_step = TIMELINE_POINTS * SAMPLE_MS;
    ((period.until - period.since).max(1) + per_step - 1) / per_step * SAMPLE_MS
}

/// Viewers of each sample of a scope of `analytics_concurrency`, all nodes summed.
fn per_sample(scope: &Scope) -> String {
    format!(
        "SELECT t, CAST(SUM(flv + rtmp + srt + webrtc + hls + dash) AS BIGINT) AS v FROM analytics_concurrency \
         WHERE {} GROUP BY t",
        scope.clause
    )
}

fn points(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<TimelinePoint>, sqlx::Error> {
    rows.iter().map(|row| Ok(TimelinePoint { t: row.try_get(0)?, viewers: u(row.try_get(1)?) })).collect()
}

/// Which rollup rows a report reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    Totals,
    All,
}

fn breakdown(aggregate: &Aggregate, dimension: Dimension) -> Vec<Breakdown> {
    aggregate
        .breakdown(dimension, BREAKDOWN_ROWS as usize)
        .into_iter()
        .map(|(key, t)| Breakdown { key, sessions: u(t.sessions), watch_time_s: t.playing_ms as f64 / 1000.0 })
        .collect()
}

/// The QoE of an aggregate.
fn qoe(aggregate: &Aggregate) -> Qoe {
    let t: &Tally = &aggregate.totals;
    let [startup_ms_p50, startup_ms_p95] = aggregate.percentiles(Dimension::StartupMs, [0.5, 0.95]);
    let [latency_ms_p50] = aggregate.percentiles(Dimension::LatencyMs, [0.5]);
    Qoe {
        sessions: u(t.sessions),
        startup_ms_p50,
        startup_ms_p95,
        rebuffer_ratio: crate::score::rebuffer_ratio(u(t.playing_ms), u(t.rebuffer_ms)),
        rebuffer_count: u(t.rebuffer_count),
        score: (t.sessions > 0).then(|| (t.score_sum / t.sessions as f64 * 10.0).round() / 10.0),
        exits_before_start: u(t.exits),
        failures: u(t.failures),
        latency_ms_p50,
        bitrate_kbps: (t.bitrate_n > 0).then(|| (t.bitrate_sum as f64 / t.bitrate_n as f64).round()),
        dropped_frames: u(t.dropped_frames),
    }
}

impl Store {
    /// `(views, unique viewers)` of a view scope.
    async fn views(&self, scope: &Scope) -> Result<(u64, u64), ReportError> {
        let sql = format!("SELECT COUNT(*), COUNT(DISTINCT visitor) FROM analytics_views WHERE {}", scope.clause);
        let row = scope.bindings.query(&sql).fetch_one(&self.pool).await?;
        Ok((u(row.try_get(0)?), u(row.try_get(1)?)))
    }

    /// The sessions of one video, stream or the whole server that started in `period`, added
    /// up: the whole days from the day rollups, the partial days at the period's edges from
    /// the sessions themselves (with the same contributions, so both agree exactly).
    async fn aggregate(
        &self,
        scope: RollupScope,
        id: &str,
        period: Period,
        rows: Rows,
    ) -> Result<Aggregate, ReportError> {
        let mut aggregate = Aggregate::default();
        let (days, edges) = split(period);
        if let Some((first_day, end_day)) = days {
            let mut b = Bindings::default();
            let clause = format!(
                "scope = {} AND id = {} AND day >= {} AND day < {}{}",
                b.push(scope.as_str()),
                b.push(id),
                b.push(first_day),
                b.push(end_day),
                if rows == Rows::Totals { " AND dimension = ''" } else { "" }
            );
            // Breakdowns summed over the days in SQL; the totals kept by day (the daily series).
            let sum = |c: &str| format!("CAST(SUM({c}) AS BIGINT)");
            let sql = format!(
                "SELECT CASE WHEN dimension = '' THEN day ELSE 0 END AS d, dimension, key, {}, {}, {}, {}, \
                 CAST(SUM(score_sum) AS DOUBLE PRECISION), {}, {}, {}, {}, {}, {} FROM analytics_rollups \
                 WHERE {clause} GROUP BY CASE WHEN dimension = '' THEN day ELSE 0 END, dimension, key",
                sum("sessions"),
                sum("playing_ms"),
                sum("rebuffer_ms"),
                sum("rebuffer_count"),
                sum("exits"),
                sum("failures"),
                sum("bitrate_sum"),
                sum("bitrate_n"),
                sum("dropped_frames"),
                sum("views"),
            );
            for row in b.query(&sql).fetch_all(&self.pool).await? {
                let dimension: String = row.try_get(1)?;
                let Some(dimension) = Dimension::parse(&dimension) else { continue };
                let tally = Tally {
                    sessions: row.try_get(3)?,
                    playing_ms: row.try_get(4)?,
                    rebuffer_ms: row.try_get(5)?,
                    rebuffer_count: row.try_get(6)?,
                    score_sum: row.try_get(7)?,
                    exits: row.try_get(8)?,
                    failures: row.try_get(9)?,
                    bitrate_sum: row.try_get(10)?,
                    bitrate_n: row.try_get(11)?,
                    dropped_frames: row.try_get(12)?,
                    views: row.try_get(13)?,
                };
                aggregate.add(row.try_get(0)?, dimension, row.try_get::<String, _>(2)?.as_str(), &tally);
            }
        }
        let column = match scope {
            RollupScope::Video => Some(("video", id)),
            RollupScope::Stream => Some(("stream", id)),
            RollupScope::All => None,
        };
        for edge in edges {
            let edge = Scope::new(column, "started_at", edge);
            if rows == Rows::Totals {
                let sql = format!(
                    "SELECT started_at / {DAY_MS} * {DAY_MS} AS d, COUNT(*), CAST(SUM(playing_ms) AS BIGINT) \
                     FROM analytics_sessions WHERE {} GROUP BY started_at / {DAY_MS} * {DAY_MS}",
                    edge.clause
                );
                for row in edge.bindings.query(&sql).fetch_all(&self.pool).await? {
                    let tally = Tally { sessions: row.try_get(1)?, playing_ms: row.try_get(2)?, ..Tally::default() };
                    aggregate.add(row.try_get(0)?, Dimension::Totals, "", &tally);
                }
                continue;
            }
            let sql = format!("SELECT {SESSION_COLUMNS} FROM analytics_sessions WHERE {}", edge.clause);
            for row in edge.bindings.query(&sql).fetch_all(&self.pool).await? {
                aggregate.add_session(&session_from_row(&row)?, scope);
            }
        }
        Ok(aggregate)
    }

    /// The report of one video.
    pub async fn video_report(&self, video: &str, period: Period) -> Result<VideoReport, ReportError> {
        let views = Scope::new(Some(("video", video)), "at", period);
        let (view_count, unique_viewers) = self.views(&views).await?;
        let aggregate = self.aggregate(RollupScope::Video, video, period, Rows::All).await?;
        let watch_time_s = aggregate.totals.playing_ms as f64 / 1000.0;
        Ok(VideoReport {
            video: video.to_owned(),
            period,
            summary: VideoSummary {
                views: view_count,
                unique_viewers,
                watch_time_s,
                average_view_duration_s: if view_count == 0 { 0.0 } else { watch_time_s / view_count as f64 },
                sessions: u(aggregate.totals.sessions),
            },
            daily: self.daily(video, period, &aggregate).await?,
            retention: retention(&aggregate),
            countries: breakdown(&aggregate, Dimension::Country),
            devices: breakdown(&aggregate, Dimension::Device),
            browsers: breakdown(&aggregate, Dimension::Browser),
            traffic_sources: breakdown(&aggregate, Dimension::Referrer),
            protocols: breakdown(&aggregate, Dimension::Protocol),
            renditions: breakdown(&aggregate, Dimension::Rendition),
            qoe: qoe(&aggregate),
        })
    }

    /// Views and uniques by day (from the views), watch time by day (from the aggregate).
    async fn daily(&self, video: &str, period: Period, aggregate: &Aggregate) -> Result<Vec<DailyPoint>, ReportError> {
        let views = Scope::new(Some(("video", video)), "at", period);
        let sql = format!(
            "SELECT at / {DAY_MS} AS d, COUNT(*), COUNT(DISTINCT visitor) FROM analytics_views WHERE {} \
             GROUP BY d ORDER BY d",
            views.clause
        );
        let point = |d: i64| DailyPoint {
            date: rill_media::wallclock::date_of_day(d),
            views: 0,
            unique_viewers: 0,
            watch_time_s: 0.0,
        };
        let mut days: std::collections::BTreeMap<i64, DailyPoint> = std::collections::BTreeMap::new();
        for row in views.bindings.query(&sql).fetch_all(&self.pool).await? {
            let d: i64 = row.try_get(0)?;
            let day = days.entry(d).or_insert_with(|| point(d));
            day.views = u(row.try_get(1)?);
            day.unique_viewers = u(row.try_get(2)?);
        }
        for (&day, tally) in &aggregate.daily {
            let d = day / DAY_MS;
            days.entry(d).or_insert_with(|| point(d)).watch_time_s = tally.playing_ms as f64 / 1000.0;
        }
        Ok(days.into_values().collect())
    }

    /// The report of one live stream (`viewers_now` comes from the live tracker).
    pub async fn stream_report(
        &self,
        stream: &str,
        period: Period,
        viewers_now: [u64; 6],
    ) -> Result<StreamReport, ReportError> {
        let views = Scope::new(Some(("stream", stream)), "at", period);
        let (view_count, unique_viewers) = self.views(&views).await?;
        let aggregate = self.aggregate(RollupScope::Stream, stream, period, Rows::All).await?;
        let (timeline, peak) = self.timeline(stream, period).await?;
        let now = ViewersNow::from(viewers_now);
        let (peak_viewers, peak_at) = match peak {
            Some((t, v)) if v >= now.total => (v, Some(t)),
            _ => (now.total, None),
        };
        Ok(StreamReport {
            stream: stream.to_owned(),
            period,
            viewers_now: now,
            peak_viewers,
            peak_at,
            sessions: u(aggregate.totals.sessions),
            views: view_count,
            unique_viewers,
            watch_time_s: aggregate.totals.playing_ms as f64 / 1000.0,
            timeline,
            protocols: breakdown(&aggregate, Dimension::Protocol),
            countries: breakdown(&aggregate, Dimension::Country),
            devices: breakdown(&aggregate, Dimension::Device),
            renditions: breakdown(&aggregate, Dimension::Rendition),
            qoe: qoe(&aggregate),
        })
    }

    /// The downsampled timeline and the peak sample `(t, viewers)`. Steps of a minute or an
    /// hour are read from the concurrency rollups (a step's point may then include samples of
    /// its first minute or hour from before the period); the peak is exact: the best rollup
    /// row inside the period, refined to its sample, against the raw samples at the edges.
    async fn timeline(
        &self,
        stream: &str,
        period: Period,
    ) -> Result<(Vec<TimelinePoint>, Option<(i64, u64)>), ReportError> {
        let step = timeline_step(period);
        let Some(&grain) = CONCURRENCY_GRAINS.iter().rev().find(|&&g| step % g == 0) else {
            let scope = Scope::new(Some(("stream", stream)), "t", period);
            let sql = format!(
                "SELECT (t / {step}) * {step} AS b, MAX(v) FROM ({}) s GROUP BY b ORDER BY b",
                per_sample(&scope)
            );
            let timeline = points(scope.bindings.query(&sql).fetch_all(&self.pool).await?)?;
            return Ok((timeline, self.peak_sample(stream, period).await?));
        };
        let first = (period.since + grain - 1).div_euclid(grain) * grain;
        let end = period.until.div_euclid(grain) * grain;
        let mut b = Bindings::default();
        let sql = format!(
            "SELECT (t / {step}) * {step} AS b, MAX(viewers) FROM analytics_concurrency_rollups \
             WHERE stream = {} AND grain = {grain} AND t >= {} AND t < {} GROUP BY b ORDER BY b",
            b.push(stream),
            b.push(period.since.div_euclid(grain) * grain),
            b.push(period.until)
        );
        let timeline = points(b.query(&sql).fetch_all(&self.pool).await?)?;
        let mut candidates = Vec::new();
        if first < end {
            let mut b = Bindings::default();
            let sql = format!(
                "SELECT t, viewers FROM analytics_concurrency_rollups WHERE stream = {} AND grain = {grain} \
                 AND t >= {} AND t < {} ORDER BY viewers DESC, t LIMIT 1",
                b.push(stream),
                b.push(first),
                b.push(end)
            );
            if let Some(row) = b.query(&sql).fetch_optional(&self.pool).await? {
                let t: i64 = row.try_get(0)?;
                candidates.extend(self.peak_sample(stream, Period { since: t, until: t + grain }).await?);
            }
            for edge in [Period { since: period.since, until: first }, Period { since: end, until: period.until }] {
                if edge.since < edge.until {
                    candidates.extend(self.peak_sample(stream, edge).await?);
                }
            }
        } else {
            candidates.extend(self.peak_sample(stream, period).await?);
        }
        let peak = candidates.into_iter().min_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok((timeline, peak))
    }

    /// The sample with the most viewers (all nodes summed) in `period`, the earliest of ties.
    async fn peak_sample(&self, stream: &str, period: Period) -> Result<Option<(i64, u64)>, ReportError> {
        let scope = Scope::new(Some(("stream", stream)), "t", period);
        let sql = format!("SELECT t, v FROM ({}) s ORDER BY v DESC, t LIMIT 1", per_sample(&scope));
        Ok(scope
            .bindings
            .query(&sql)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| Ok::<_, sqlx::Error>((row.try_get(0)?, u(row.try_get(1)?))))
            .transpose()?)
    }

    /// Totals, tops and QoE over every stream and video.
    pub async fn overview(&self, period: Period) -> Result<Overview, ReportError> {
        let views = Scope::new(None, "at", period);
        let (view_count, unique_viewers) = self.views(&views).await?;
        let aggregate = self.aggregate(RollupScope::All, "", period, Rows::All).await?;
        let totals = Totals {
            sessions: u(aggregate.totals.sessions),
            views: view_count,
            unique_viewers,
            watch_time_s: aggregate.totals.playing_ms as f64 / 1000.0,
        };
        let mut buckets = [0u64; 5];
        for (key, tally) in aggregate.breakdown(Dimension::ScoreBucket, 5) {
            if let Some(slot) = key.parse::<usize>().ok().and_then(|b| buckets.get_mut(b)) {
                *slot += u(tally.sessions);
            }
        }
        let score_distribution =
            (0..5u32).map(|i| ScoreBucket { from: i * 20, to: i * 20 + 20, sessions: buckets[i as usize] }).collect();
        Ok(Overview {
            period,
            totals,
            top_videos: self.top(RollupScope::Video, period).await?,
            top_streams: self.top(RollupScope::Stream, period).await?,
            protocols: breakdown(&aggregate, Dimension::Protocol),
            countries: breakdown(&aggregate, Dimension::Country),
            qoe: qoe(&aggregate),
            score_distribution,
        })
    }

    /// The most viewed videos or streams, with their watch time: views from the day rollups
    /// and the views table at the period's edges.
    async fn top(&self, scope: RollupScope, period: Period) -> Result<Vec<Top>, ReportError> {
        let column = match scope {
            RollupScope::Video => "video",
            _ => "stream",
        };
        let (days, edges) = split(period);
        let mut views: HashMap<String, i64> = HashMap::new();
        if let Some((first_day, end_day)) = days {
            let mut b = Bindings::default();
            let sql = format!(
                "SELECT id, CAST(SUM(sessions) AS BIGINT) FROM analytics_rollups WHERE scope = {} AND dimension = 'viewed' \
                 AND day >= {} AND day < {} GROUP BY id",
                b.push(scope.as_str()),
                b.push(first_day),
                b.push(end_day)
            );
            for row in b.query(&sql).fetch_all(&self.pool).await? {
                *views.entry(row.try_get(0)?).or_default() += row.try_get::<i64, _>(1)?;
            }
        }
        for edge in edges {
            let edge = Scope::new(None, "at", edge);
            let sql = format!(
                "SELECT {column}, COUNT(*) FROM analytics_views WHERE {column} IS NOT NULL AND {} GROUP BY {column}",
                edge.clause
            );
            for row in edge.bindings.query(&sql).fetch_all(&self.pool).await? {
                *views.entry(row.try_get(0)?).or_default() += row.try_get::<i64, _>(1)?;
            }
        }
        let mut tops: Vec<Top> = views.into_iter().map(|(id, n)| Top { id, views: u(n), watch_time_s: 0.0 }).collect();
        tops.sort_by(|a, b| b.views.cmp(&a.views).then_with(|| a.id.cmp(&b.id)));
        tops.truncate(BREAKDOWN_ROWS as usize);
        for top in &mut tops {
            let aggregate = self.aggregate(scope, &top.id, period, Rows::Totals).await?;
            top.watch_time_s = aggregate.totals.playing_ms as f64 / 1000.0;
        }
        Ok(tops)
    }

    /// A page of sessions, newest first.
    pub async fn sessions(&self, filter: &SessionFilter) -> Result<SessionPage, ReportError> {
        let mut b = Bindings::default();
        let mut clauses = Vec::new();
        let mut eq = |column: &str, value: Option<String>, b: &mut Bindings| {
            if let Some(v) = value {
                clauses.push(format!("{column} = {}", b.push(v)));
            }
        };
        eq("stream", filter.stream.clone(), &mut b);
        eq("video", filter.video.clone(), &mut b);
        eq("protocol", filter.protocol.map(|p| p.as_str().to_owned()), &mut b);
        eq("country", filter.country.clone(), &mut b);
        eq("outcome", filter.outcome.map(|o| o.as_str().to_owned()), &mut b);
        if let Some(since) = filter.since {
            clauses.push(format!("started_at >= {}", b.push(since)));
        }
        if let Some(until) = filter.until {
            clauses.push(format!("started_at < {}", b.push(until)));
        }
        if let Some((at, id)) = &filter.before {
            let (at1, at2, id) = (b.push(*at), b.push(*at), b.push(id.as_str()));
            clauses.push(format!("(started_at < {at1} OR (started_at = {at2} AND id < {id}))"));
        }
        let limit = filter.limit.clamp(1, MAX_SESSIONS_PAGE);
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM analytics_sessions {} ORDER BY started_at DESC, id DESC LIMIT {}",
            if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) },
            limit + 1
        );
        let rows = b.query(&sql).fetch_all(&self.pool).await?;
        let mut sessions = rows.iter().map(session_from_row).collect::<Result<Vec<_>, _>>()?;
        let next = (sessions.len() > limit).then(|| {
            sessions.truncate(limit);
            let last = &sessions[limit - 1];
            format!("{}:{}", last.started_at, last.id)
        });
        Ok(SessionPage { sessions, next })
    }
}

/// The share of an aggregate's views that watched each hundredth.
fn retention(aggregate: &Aggregate) -> Vec<RetentionPoint> {
    let views = aggregate.totals.views;
    aggregate
        .retention()
        .iter()
        .enumerate()
        .map(|(i, &watched)| {
            let share = if views <= 0 { 0.0 } else { watched as f64 / views as f64 };
            RetentionPoint { percent: i as u32, share: (share * 1000.0).round() / 1000.0 }
        })
        .collect()
}
