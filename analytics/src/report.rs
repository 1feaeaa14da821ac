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

use crate::session::{Protocol, SessionRecord, RETENTION_BUCKETS};
use crate::store::{Store, StoreError};
use rill_vod::catalog::Bindings;
use serde::Serialize;
use sqlx::Row;

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

impl Store {
    /// `(views, unique viewers)` of a view scope.
    async fn views(&self, scope: &Scope) -> Result<(u64, u64), ReportError> {
        let sql = format!("SELECT COUNT(*), COUNT(DISTINCT visitor) FROM analytics_views WHERE {}", scope.clause);
        let row = scope.bindings.query(&sql).fetch_one(&self.pool).await?;
        Ok((u(row.try_get(0)?), u(row.try_get(1)?)))
    }

    async fn breakdown(&self, key: &str, scope: &Scope) -> Result<Vec<Breakdown>, ReportError> {
        let sql = format!(
            "SELECT {key} AS k, COUNT(*) AS n, CAST(SUM(playing_ms) AS BIGINT) AS w FROM analytics_sessions WHERE {} \
             GROUP BY {key} ORDER BY n DESC, k LIMIT {BREAKDOWN_ROWS}",
            scope.clause
        );
        let rows = scope.bindings.query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(Breakdown {
                    key: row.try_get::<Option<String>, _>(0)?.unwrap_or_else(|| "unknown".into()),
                    sessions: u(row.try_get(1)?),
                    watch_time_s: row.try_get::<Option<i64>, _>(2)?.unwrap_or(0) as f64 / 1000.0,
                })
            })
            .collect()
    }

    /// The values of `column` at the given ranks (0–1) over a scope, from one `GROUP BY` (the
    /// distinct values and their counts): the value at rank `round((n - 1) · p)` in ascending order.
    async fn percentiles<const N: usize>(
        &self,
        column: &str,
        scope: &Scope,
        ps: [f64; N],
    ) -> Result<[Option<u64>; N], ReportError> {
        let sql = format!(
            "SELECT {column}, COUNT(*) FROM analytics_sessions WHERE {} AND {column} IS NOT NULL \
             GROUP BY {column} ORDER BY {column}",
            scope.clause
        );
        let rows = scope.bindings.query(&sql).fetch_all(&self.pool).await?;
        let counts = rows
            .iter()
            .map(|row| Ok((u(row.try_get(0)?), u(row.try_get(1)?))))
            .collect::<Result<Vec<(u64, u64)>, sqlx::Error>>()?;
        let n: u64 = counts.iter().map(|&(_, c)| c).sum();
        Ok(ps.map(|p| {
            if n == 0 {
                return None;
            }
            let rank = ((n - 1) as f64 * p).round() as u64;
            let mut seen = 0;
            counts
                .iter()
                .find(|&&(_, c)| {
                    seen += c;
                    seen > rank
                })
                .map(|&(v, _)| v)
        }))
    }

    /// The QoE of a scope and its watch time (ms): one aggregate query and the percentiles.
    async fn qoe(&self, scope: &Scope) -> Result<(Qoe, u64), ReportError> {
        let sql = format!(
            "SELECT COUNT(*), CAST(SUM(playing_ms) AS BIGINT), CAST(SUM(rebuffer_ms) AS BIGINT), CAST(SUM(rebuffer_count) AS BIGINT), AVG(score), \
             CAST(SUM(CASE WHEN outcome = 'exit_before_start' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS BIGINT), AVG(CAST(bitrate_kbps AS DOUBLE PRECISION)), CAST(SUM(dropped_frames) AS BIGINT) \
             FROM analytics_sessions WHERE {}",
            scope.clause
        );
        let row = scope.bindings.query(&sql).fetch_one(&self.pool).await?;
        let int = |i: usize| -> Result<u64, sqlx::Error> { Ok(u(row.try_get::<Option<i64>, _>(i)?.unwrap_or(0))) };
        let float = |i: usize| -> Result<Option<f64>, sqlx::Error> {
            // AVG is a float in both dialects (PostgreSQL's AVG of a BIGINT is NUMERIC: cast).
            row.try_get::<Option<f64>, _>(i)
        };
        let sessions = int(0)?;
        let [startup_ms_p50, startup_ms_p95] = self.percentiles("startup_ms", scope, [0.5, 0.95]).await?;
        let [latency_ms_p50] = self.percentiles("latency_ms", scope, [0.5]).await?;
        Ok((
            Qoe {
                sessions,
                startup_ms_p50,
                startup_ms_p95,
                rebuffer_ratio: crate::score::rebuffer_ratio(int(1)?, int(2)?),
                rebuffer_count: int(3)?,
                score: float(4)?.map(|s| (s * 10.0).round() / 10.0),
                exits_before_start: int(5)?,
                failures: int(6)?,
                latency_ms_p50,
                bitrate_kbps: float(7)?.map(f64::round),
                dropped_frames: int(8)?,
            },
            int(1)?,
        ))
    }

    /// The report of one video.
    pub async fn video_report(&self, video: &str, period: Period) -> Result<VideoReport, ReportError> {
        let sessions = Scope::new(Some(("video", video)), "started_at", period);
        let views = Scope::new(Some(("video", video)), "at", period);
        let (view_count, unique_viewers) = self.views(&views).await?;
        let (qoe, watch_ms) = self.qoe(&sessions).await?;
        let session_count = qoe.sessions;
        let watch_time_s = watch_ms as f64 / 1000.0;
        Ok(VideoReport {
            video: video.to_owned(),
            period,
            summary: VideoSummary {
                views: view_count,
                unique_viewers,
                watch_time_s,
                average_view_duration_s: if view_count == 0 { 0.0 } else { watch_time_s / view_count as f64 },
                sessions: session_count,
            },
            daily: self.daily(video, period).await?,
            retention: self.retention(video, period).await?,
            countries: self.breakdown("country", &sessions).await?,
            devices: self.breakdown("device", &sessions).await?,
            browsers: self.breakdown("browser", &sessions).await?,
            traffic_sources: self.breakdown("COALESCE(referrer, 'direct')", &sessions).await?,
            protocols: self.breakdown("protocol", &sessions).await?,
            renditions: self.breakdown("rendition", &sessions).await?,
            qoe,
        })
    }

    async fn daily(&self, video: &str, period: Period) -> Result<Vec<DailyPoint>, ReportError> {
        let views = Scope::new(Some(("video", video)), "at", period);
        let sql = format!(
            "SELECT at / {DAY_MS} AS d, COUNT(*), COUNT(DISTINCT visitor) FROM analytics_views WHERE {} \
             GROUP BY d ORDER BY d",
            views.clause
        );
        let mut days: std::collections::BTreeMap<i64, DailyPoint> = std::collections::BTreeMap::new();
        for row in views.bindings.query(&sql).fetch_all(&self.pool).await? {
            let d: i64 = row.try_get(0)?;
            days.insert(
                d,
                DailyPoint {
                    date: rill_media::wallclock::date_of_day(d),
                    views: u(row.try_get(1)?),
                    unique_viewers: u(row.try_get(2)?),
                    watch_time_s: 0.0,
                },
            );
        }
        let sessions = Scope::new(Some(("video", video)), "started_at", period);
        let sql = format!(
            "SELECT started_at / {DAY_MS} AS d, CAST(SUM(playing_ms) AS BIGINT) FROM analytics_sessions WHERE {} GROUP BY d",
            sessions.clause
        );
        for row in sessions.bindings.query(&sql).fetch_all(&self.pool).await? {
            let d: i64 = row.try_get(0)?;
            let point = days.entry(d).or_insert_with(|| DailyPoint {
                date: rill_media::wallclock::date_of_day(d),
                views: 0,
                unique_viewers: 0,
                watch_time_s: 0.0,
            });
            point.watch_time_s = row.try_get::<Option<i64>, _>(1)?.unwrap_or(0) as f64 / 1000.0;
        }
        Ok(days.into_values().collect())
    }

    async fn retention(&self, video: &str, period: Period) -> Result<Vec<RetentionPoint>, ReportError> {
        let scope = Scope::new(Some(("video", video)), "view_at", period);
        let bits: Vec<String> = (0..RETENTION_BUCKETS)
            .map(|i| {
                let (column, shift) = if i < 64 { ("watched_lo", i) } else { ("watched_hi", i - 64) };
                format!("CAST(SUM(({column} >> {shift}) & 1) AS BIGINT)")
            })
            .collect();
        let sql = format!("SELECT COUNT(*), {} FROM analytics_sessions WHERE {}", bits.join(", "), scope.clause);
        let row = scope.bindings.query(&sql).fetch_one(&self.pool).await?;
        let views = u(row.try_get(0)?);
        (0..RETENTION_BUCKETS)
            .map(|i| {
                let watched = u(row.try_get::<Option<i64>, _>(i + 1)?.unwrap_or(0));
                let share = if views == 0 { 0.0 } else { watched as f64 / views as f64 };
                Ok(RetentionPoint { percent: i as u32, share: (share * 1000.0).round() / 1000.0 })
            })
            .collect()
    }

    /// The report of one live stream (`viewers_now` comes from the live tracker).
    pub async fn stream_report(
        &self,
        stream: &str,
        period: Period,
        viewers_now: [u64; 6],
    ) -> Result<StreamReport, ReportError> {
        let sessions = Scope::new(Some(("stream", stream)), "started_at", period);
        let views = Scope::new(Some(("stream", stream)), "at", period);
        let (view_count, unique_viewers) = self.views(&views).await?;
        let (qoe, watch_ms) = self.qoe(&sessions).await?;
        let session_count = qoe.sessions;
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
            sessions: session_count,
            views: view_count,
            unique_viewers,
            watch_time_s: watch_ms as f64 / 1000.0,
            timeline,
            protocols: self.breakdown("protocol", &sessions).await?,
            countries: self.breakdown("country", &sessions).await?,
            devices: self.breakdown("device", &sessions).await?,
            renditions: self.breakdown("rendition", &sessions).await?,
            qoe,
        })
    }

    /// The downsampled timeline and the peak sample `(t, viewers)`.
    async fn timeline(
        &self,
        stream: &str,
        period: Period,
    ) -> Result<(Vec<TimelinePoint>, Option<(i64, u64)>), ReportError> {
        let scope = Scope::new(Some(("stream", stream)), "t", period);
        let step = ((period.until - period.since) / TIMELINE_POINTS).max(SAMPLE_MS) / SAMPLE_MS * SAMPLE_MS;
        let per_sample = format!(
            "SELECT t, CAST(SUM(flv + rtmp + srt + webrtc + hls + dash) AS BIGINT) AS v FROM analytics_concurrency WHERE {} GROUP BY t",
            scope.clause
        );
        let sql = format!("SELECT (t / {step}) * {step} AS b, MAX(v) FROM ({per_sample}) s GROUP BY b ORDER BY b");
        let timeline = scope
            .bindings
            .query(&sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok(TimelinePoint { t: row.try_get(0)?, viewers: u(row.try_get(1)?) }))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let sql = format!("SELECT t, v FROM ({per_sample}) s ORDER BY v DESC, t LIMIT 1");
        let peak = scope
            .bindings
            .query(&sql)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| Ok::<_, sqlx::Error>((row.try_get(0)?, u(row.try_get(1)?))))
            .transpose()?;
        Ok((timeline, peak))
    }

    /// Totals, tops and QoE over every stream and video.
    pub async fn overview(&self, period: Period) -> Result<Overview, ReportError> {
        let sessions = Scope::new(None, "started_at", period);
        let views = Scope::new(None, "at", period);
        let (view_count, unique_viewers) = self.views(&views).await?;
        let (qoe, watch_ms) = self.qoe(&sessions).await?;
        let totals = Totals {
            sessions: qoe.sessions,
            views: view_count,
            unique_viewers,
            watch_time_s: watch_ms as f64 / 1000.0,
        };
        let mut score_distribution = Vec::new();
        let sql = format!(
            "SELECT CAST(score / 20 AS BIGINT) AS b, COUNT(*) FROM analytics_sessions WHERE {} GROUP BY b",
            sessions.clause
        );
        let mut buckets = [0u64; 5];
        for row in sessions.bindings.query(&sql).fetch_all(&self.pool).await? {
            let b: i64 = row.try_get(0)?;
            buckets[b.clamp(0, 4) as usize] += u(row.try_get(1)?);
        }
        for (i, n) in buckets.iter().enumerate() {
            score_distribution.push(ScoreBucket { from: i as u32 * 20, to: i as u32 * 20 + 20, sessions: *n });
        }
        Ok(Overview {
            period,
            totals,
            top_videos: self.top("video", period).await?,
            top_streams: self.top("stream", period).await?,
            protocols: self.breakdown("protocol", &sessions).await?,
            countries: self.breakdown("country", &sessions).await?,
            qoe,
            score_distribution,
        })
    }

    async fn top(&self, column: &'static str, period: Period) -> Result<Vec<Top>, ReportError> {
        let views = Scope::new(None, "at", period);
        let sql = format!(
            "SELECT {column}, COUNT(*) AS n FROM analytics_views WHERE {column} IS NOT NULL AND {} \
             GROUP BY {column} ORDER BY n DESC, {column} LIMIT {BREAKDOWN_ROWS}",
            views.clause
        );
        let mut tops = views
            .bindings
            .query(&sql)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| Ok(Top { id: row.try_get(0)?, views: u(row.try_get(1)?), watch_time_s: 0.0 }))
            .collect::<Result<Vec<Top>, sqlx::Error>>()?;
        if tops.is_empty() {
            return Ok(tops);
        }
        // The watch time of every top item in one GROUP BY (not one query per item).
        let mut scope = Scope::new(None, "started_at", period);
        let ids: Vec<String> = tops.iter().map(|t| scope.bindings.push(t.id.as_str())).collect();
        let sql = format!(
            "SELECT {column}, CAST(SUM(playing_ms) AS BIGINT) FROM analytics_sessions WHERE {column} IN ({}) AND {} \
             GROUP BY {column}",
            ids.join(", "),
            scope.clause
        );
        for row in scope.bindings.query(&sql).fetch_all(&self.pool).await? {
            let id: String = row.try_get(0)?;
            let watch_ms = u(row.try_get::<Option<i64>, _>(1)?.unwrap_or(0));
            if let Some(top) = tops.iter_mut().find(|t| t.id == id) {
                top.watch_time_s = watch_ms as f64 / 1000.0;
            }
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

const SESSION_COLUMNS: &str = "id, stream, video, protocol, started_at, last_seen, ended_at, playing_ms, rebuffer_ms, \
     rebuffer_count, startup_ms, outcome, errors, bitrate_kbps, switches_up, switches_down, dropped_frames, \
     latency_ms, rtt_ms, lost_packets, bytes, visitor, country, device, browser, os, referrer, rendition, \
     watched_lo, watched_hi, view_at, score";

fn session_from_row(row: &sqlx::any::AnyRow) -> Result<SessionRecord, ReportError> {
    let opt = |i: usize| -> Result<Option<u64>, sqlx::Error> { Ok(row.try_get::<Option<i64>, _>(i)?.map(u)) };
    let int = |i: usize| -> Result<u64, sqlx::Error> { Ok(u(row.try_get::<i64, _>(i)?)) };
    let protocol: String = row.try_get(3)?;
    let outcome: String = row.try_get(11)?;
    let corrupt = |what: &str, v: &str| ReportError::Filter("stored session", format!("{what} {v:?}"));
    Ok(SessionRecord {
        id: row.try_get(0)?,
        stream: row.try_get(1)?,
        video: row.try_get(2)?,
        protocol: Protocol::parse(&protocol).ok_or_else(|| corrupt("protocol", &protocol))?,
        started_at: row.try_get(4)?,
        last_seen: row.try_get(5)?,
        ended_at: row.try_get(6)?,
        playing_ms: int(7)?,
        rebuffer_ms: int(8)?,
        rebuffer_count: int(9)?,
        startup_ms: opt(10)?,
        outcome: crate::score::Outcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
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
