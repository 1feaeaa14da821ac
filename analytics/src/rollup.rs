//! Day rollups (sans-IO): what each session contributes to the per-day totals and breakdowns
//! of its video, its stream and the whole server, and the fold that turns rollup rows (and the
//! sessions of the partial days at a period's edges) into report figures.
//!
//! A session contributes to the day it started in. When the store rewrites a session it adds
//! `contributions(new) − contributions(old)` to the rollups ([`delta`]), so a session updated
//! a hundred times, or merged from the parts two nodes saw, counts once. Reports read whole days
//! from the rollups and the edges of their period from the sessions, with the same
//! [`contributions`], so the two agree exactly.
//!
//! Why days, not minutes: a 30-day report of a video then reads ~30 rows per breakdown key; at
//! minute grain it would read as many rows as there are sessions for any video watched less
//! than once a minute, and no fewer than the sessions themselves.

use crate::score::Outcome;
use crate::session::{SessionRecord, RETENTION_BUCKETS};
use std::collections::{BTreeMap, HashMap};

pub const DAY_MS: i64 = 86_400_000;

/// What a rollup row adds up to. Breakdown rows only use `sessions` and `playing_ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    pub sessions: i64,
    pub playing_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    pub score_sum: f64,
    pub exits: i64,
    pub failures: i64,
    pub bitrate_sum: i64,
    pub bitrate_n: i64,
    pub dropped_frames: i64,
    /// Sessions that qualified as a view (the retention curve's denominator).
    pub views: i64,
}

impl Tally {
    fn add(&mut self, other: &Tally, sign: i64) {
        self.sessions += sign * other.sessions;
        self.playing_ms += sign * other.playing_ms;
        self.rebuffer_ms += sign * other.rebuffer_ms;
        self.rebuffer_count += sign * other.rebuffer_count;
        self.score_sum += sign as f64 * other.score_sum;
        self.exits += sign * other.exits;
        self.failures += sign * other.failures;
        self.bitrate_sum += sign * other.bitrate_sum;
        self.bitrate_n += sign * other.bitrate_n;
        self.dropped_frames += sign * other.dropped_frames;
        self.views += sign * other.views;
    }

    fn is_zero(&self) -> bool {
        *self == Tally { score_sum: self.score_sum, ..Tally::default() } && self.score_sum.abs() < 1e-9
    }

    fn one(sessions: i64, playing_ms: i64) -> Tally {
        Tally { sessions, playing_ms, ..Tally::default() }
    }
}

/// What a rollup row is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Video,
    Stream,
    /// Every session of the server (`id` is empty).
    All,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Video => "video",
            Scope::Stream => "stream",
            Scope::All => "all",
        }
    }
}

/// A breakdown of a scope's sessions (`Totals` has one key, the empty one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Totals,
    Country,
    Device,
    Browser,
    Referrer,
    Protocol,
    Rendition,
    /// Key: the startup time's [`histogram_bucket`] (the percentiles' histogram).
    StartupMs,
    /// Key: the mean live latency's [`histogram_bucket`].
    LatencyMs,
    /// Key: the fifth (0–4) of the overall score.
    ScoreBucket,
    /// Key: a watched hundredth (0–99) of a view; videos only.
    Retention,
    /// Views (one per visitor, content and hour: what `analytics_views` holds) by the day they
    /// qualified; `sessions` counts them. Added when the store records a view.
    Viewed,
}

impl Dimension {
    pub const ALL: [Dimension; 12] = [
        Dimension::Totals,
        Dimension::Country,
        Dimension::Device,
        Dimension::Browser,
        Dimension::Referrer,
        Dimension::Protocol,
        Dimension::Rendition,
        Dimension::StartupMs,
        Dimension::LatencyMs,
        Dimension::ScoreBucket,
        Dimension::Retention,
        Dimension::Viewed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Totals => "",
            Dimension::Country => "country",
            Dimension::Device => "device",
            Dimension::Browser => "browser",
            Dimension::Referrer => "referrer",
            Dimension::Protocol => "protocol",
            Dimension::Rendition => "rendition",
            Dimension::StartupMs => "startup_ms",
            Dimension::LatencyMs => "latency_ms",
            Dimension::ScoreBucket => "score",
            Dimension::Retention => "retention",
            Dimension::Viewed => "viewed",
        }
    }

    pub fn parse(s: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// The key of a rollup row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    pub scope: Scope,
    pub id: String,
    /// Unix ms of the day's start (UTC).
    pub day: i64,
    pub dimension: Dimension,
    pub key: String,
}

/// The day (unix ms of its start) that `t` falls in.
pub fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY_MS) * DAY_MS
}

/// The histogram bucket of a duration in ms: 10 ms wide below 10 s, 100 ms above (percentiles
/// are reported at that resolution; at most ~1,000 keys per day however many sessions).
pub fn histogram_bucket(ms: u64) -> u64 {
    if ms < 10_000 {
        ms / 10 * 10
    } else {
        ms / 100 * 100
    }
}

fn histogram_key(ms: u64) -> String {
    histogram_bucket(ms).to_string()
}

/// The scopes a session counts in: its video, its stream, the server.
fn scopes(session: &SessionRecord) -> impl Iterator<Item = (Scope, &str)> {
    [
        session.video.as_deref().map(|v| (Scope::Video, v)),
        session.stream.as_deref().map(|s| (Scope::Stream, s)),
        Some((Scope::All, "")),
    ]
    .into_iter()
    .flatten()
}

/// Everything `session` adds to the rollups.
pub fn contributions(session: &SessionRecord) -> Vec<(RollupKey, Tally)> {
    let day = day_of(session.started_at);
    let totals = Tally {
        sessions: 1,
        playing_ms: session.playing_ms as i64,
        rebuffer_ms: session.rebuffer_ms as i64,
        rebuffer_count: session.rebuffer_count as i64,
        score_sum: session.score,
        exits: (session.outcome == Outcome::ExitBeforeStart) as i64,
        failures: (session.outcome == Outcome::Failed) as i64,
        bitrate_sum: session.bitrate_kbps.unwrap_or(0) as i64,
        bitrate_n: session.bitrate_kbps.is_some() as i64,
        dropped_frames: session.dropped_frames as i64,
        views: session.view_at.is_some() as i64,
    };
    let watched = Tally::one(1, session.playing_ms as i64);
    let unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let mut rows: Vec<(Dimension, String, Tally)> = vec![
        (Dimension::Totals, String::new(), totals),
        (Dimension::Country, unknown(&session.country), watched),
        (Dimension::Device, session.device.clone(), watched),
        (Dimension::Browser, session.browser.clone(), watched),
        (Dimension::Referrer, session.referrer.clone().unwrap_or_else(|| "direct".into()), watched),
        (Dimension::Protocol, session.protocol.as_str().to_owned(), watched),
        (Dimension::Rendition, unknown(&session.rendition), watched),
        (Dimension::ScoreBucket, ((session.score / 20.0) as i64).clamp(0, 4).to_string(), Tally::one(1, 0)),
    ];
    if let Some(startup) = session.startup_ms {
        rows.push((Dimension::StartupMs, histogram_key(startup), Tally::one(1, 0)));
    }
    if let Some(latency) = session.latency_ms {
        rows.push((Dimension::LatencyMs, histogram_key(latency), Tally::one(1, 0)));
    }
    let mut out = Vec::with_capacity(rows.len() * 3 + RETENTION_BUCKETS);
    for (scope, id) in scopes(session) {
        for (dimension, key, tally) in &rows {
            let key = RollupKey { scope, id: id.to_owned(), day, dimension: *dimension, key: key.clone() };
            out.push((key, *tally));
        }
    }
    if let (Some(video), Some(_)) = (&session.video, session.view_at) {
        for bucket in (0..RETENTION_BUCKETS).filter(|b| session.watched >> b & 1 == 1) {
            let key = RollupKey {
                scope: Scope::Video,
                id: video.clone(),
                day,
                dimension: Dimension::Retention,
                key: bucket.to_string(),
            };
            out.push((key, Tally::one(1, 0)));
        }
    }
    out
}

/// The rows a recorded view adds: one to its video, its stream and the server, on the day it
/// qualified.
pub fn view_contributions(session: &SessionRecord, at: i64) -> Vec<(RollupKey, Tally)> {
    scopes(session)
        .map(|(scope, id)| {
            let key = RollupKey {
                scope,
                id: id.to_owned(),
                day: day_of(at),
                dimension: Dimension::Viewed,
                key: String::new(),
            };
            (key, Tally::one(1, 0))
        })
        .collect()
}

/// Adds `contributions(new) − contributions(old)` to `deltas` (rows that cancel out are
/// removed by [`Deltas::into_rows`]).
#[derive(Debug, Default)]
pub struct Deltas(HashMap<RollupKey, Tally>);

impl Deltas {
    /// Adds rows as they are (a recorded view's).
    pub fn add(&mut self, rows: Vec<(RollupKey, Tally)>) {
        for (key, tally) in rows {
            self.0.entry(key).or_default().add(&tally, 1);
        }
    }

    pub fn replace(&mut self, old: Option<&SessionRecord>, new: &SessionRecord) {
        if let Some(old) = old {
            for (key, tally) in contributions(old) {
                self.0.entry(key).or_default().add(&tally, -1);
            }
        }
        for (key, tally) in contributions(new) {
            self.0.entry(key).or_default().add(&tally, 1);
        }
    }

    /// The rows that change, in key order (writers lock rows in one order: no deadlocks).
    pub fn into_rows(self) -> Vec<(RollupKey, Tally)> {
        let mut rows: Vec<_> = self.0.into_iter().filter(|(_, t)| !t.is_zero()).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }
}

/// One scope over a period, folded from rollup rows and edge sessions.
#[derive(Debug, Default)]
pub struct Aggregate {
    pub totals: Tally,
    /// By day (unix ms of its start).
    pub daily: BTreeMap<i64, Tally>,
    pub breakdowns: HashMap<Dimension, HashMap<String, Tally>>,
}

impl Aggregate {
    /// Adds one rollup row of the scope.
    pub fn add(&mut self, day: i64, dimension: Dimension, key: &str, tally: &Tally) {
        if dimension == Dimension::Totals {
            self.totals.add(tally, 1);
            self.daily.entry(day).or_default().add(tally, 1);
        } else {
            self.breakdowns.entry(dimension).or_default().entry(key.to_owned()).or_default().add(tally, 1);
        }
    }

    /// Adds a session of the scope (one at a period's edge).
    pub fn add_session(&mut self, session: &SessionRecord, scope: Scope) {
        for (key, tally) in contributions(session).into_iter().filter(|(k, _)| k.scope == scope) {
            self.add(key.day, key.dimension, &key.key, &tally);
        }
    }

    /// The rows of a breakdown, most sessions first (then by key), at most `limit`.
    pub fn breakdown(&self, dimension: Dimension, limit: usize) -> Vec<(String, Tally)> {
        let mut rows: Vec<(String, Tally)> = self
            .breakdowns
            .get(&dimension)
            .map(|m| m.iter().filter(|(_, t)| t.sessions > 0).map(|(k, t)| (k.clone(), *t)).collect())
            .unwrap_or_default();
        rows.sort_by(|a, b| b.1.sessions.cmp(&a.1.sessions).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(limit);
        rows
    }

    /// The values of a numeric breakdown at the ranks `ps` (0–1): the value at rank
    /// `round((n − 1) · p)` in ascending order.
    pub fn percentiles<const N: usize>(&self, dimension: Dimension, ps: [f64; N]) -> [Option<u64>; N] {
        let mut counts: Vec<(u64, i64)> = self
            .breakdowns
            .get(&dimension)
            .map(|m| {
                m.iter().filter_map(|(k, t)| Some((k.parse().ok()?, t.sessions))).filter(|&(_, n)| n > 0).collect()
            })
            .unwrap_or_default();
        counts.sort_unstable();
        let n: i64 = counts.iter().map(|&(_, c)| c).sum();
        ps.map(|p| {
            if n == 0 {
                return None;
            }
            let rank = ((n - 1) as f64 * p).round() as i64;
            let mut seen = 0;
            counts
                .iter()
                .find(|&&(_, c)| {
                    seen += c;
                    seen > rank
                })
                .map(|&(v, _)| v)
        })
    }

    /// Views that watched each hundredth.
    pub fn retention(&self) -> [i64; RETENTION_BUCKETS] {
        let mut out = [0; RETENTION_BUCKETS];
        if let Some(rows) = self.breakdowns.get(&Dimension::Retention) {
            for (key, tally) in rows {
                if let Some(slot) = key.parse::<usize>().ok().and_then(|b| out.get_mut(b)) {
                    *slot += tally.sessions;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Protocol;

    fn record(id: &str, playing_ms: u64, watched: u128, view: bool) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            video: Some("v".into()),
            protocol: Protocol::Hls,
            started_at: 5 * DAY_MS + 1_000,
            last_seen: 5 * DAY_MS + 1_000,
            playing_ms,
            startup_ms: Some(800),
            outcome: Outcome::Played,
            visitor: "x".into(),
            device: "desktop".into(),
            browser: "chrome".into(),
            os: "linux".into(),
            watched,
            view_at: view.then_some(5 * DAY_MS + 11_000),
            score: 90.0,
            ..SessionRecord::default()
        }
    }

    #[test]
    fn a_rewritten_session_counts_once_with_its_latest_figures() {
        let mut deltas = Deltas::default();
        let first = record("a", 1_000, 0b1, false);
        let second = record("a", 12_000, 0b111, true);
        deltas.replace(None, &first);
        deltas.replace(Some(&first), &second);
        let mut agg = Aggregate::default();
        for (key, tally) in deltas.into_rows().into_iter().filter(|(k, _)| k.scope == Scope::Video) {
            agg.add(key.day, key.dimension, &key.key, &tally);
        }
        let mut direct = Aggregate::default();
        direct.add_session(&second, Scope::Video);
        assert_eq!(agg.totals, direct.totals);
        assert_eq!(agg.totals.sessions, 1);
        assert_eq!(agg.totals.playing_ms, 12_000);
        assert_eq!(agg.totals.views, 1);
        assert_eq!(&agg.retention()[..4], &[1, 1, 1, 0]);
        assert_eq!(agg.breakdown(Dimension::Country, 20), vec![("unknown".to_owned(), Tally::one(1, 12_000))]);
        assert_eq!(agg.percentiles(Dimension::StartupMs, [0.5]), [Some(800)]);
        assert_eq!(agg.daily.keys().copied().collect::<Vec<_>>(), vec![5 * DAY_MS]);
    }

    #[test]
    fn an_unchanged_rewrite_changes_no_row() {
        let mut deltas = Deltas::default();
        let r = record("a", 1_000, 0, false);
        deltas.replace(Some(&r), &r);
        assert!(deltas.into_rows().is_empty());
    }
}
