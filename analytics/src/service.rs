//! The running analytics: the [`Tracker`] behind a lock, a bounded queue of raw reports, and
//! the writer task that flushes both to the [`Store`] in batches (one transaction each) and
//! samples concurrency every 10 s. Handlers never wait for the database: when the queue is
//! full, new reports are refused (the collector answers 429) and counted.

use crate::report::SAMPLE_MS;
use crate::score::ScoreWeights;
use crate::session::{
    ByProtocol, Content, Protocol, Report, SessionRecord, TooManySessions, Tracker, TrackerConfig, Viewer,
};
use crate::store::{Batch, ConcurrencySample, RawEvent, Store};
use rill_media::metrics::{count, Exposition, Histogram, Kind};
use rill_media::sync::lock;
use rill_vod::catalog::Dialect;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The `[analytics]` settings the service needs.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Raw reports are kept this long; sessions, views and samples for good.
    pub raw_retention_days: u64,
    pub max_sessions: usize,
    /// Raw reports waiting for the writer at most (beyond: 429).
    pub max_queue: usize,
    /// This node's name in concurrency samples (nodes sharing a database sum up).
    pub node: String,
    pub weights: ScoreWeights,
    /// How often the writer flushes.
    pub flush_every: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            raw_retention_days: 7,
            max_sessions: 100_000,
            max_queue: 200_000,
            node: "rill".into(),
            weights: ScoreWeights::default(),
            flush_every: Duration::from_secs(1),
        }
    }
}

/// Why a report was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("analytics queue full; retry later")]
    Busy,
    #[error(transparent)]
    TooManySessions(#[from] TooManySessions),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct AnalyticsStats {
    pub reports: AtomicU64,
    pub rejected_lines: AtomicU64,
    pub refused_busy: AtomicU64,
    pub refused_sessions: AtomicU64,
    pub rate_limited: AtomicU64,
    pub batches: AtomicU64,
    pub write_errors: AtomicU64,
    pub events_written: AtomicU64,
    pub sessions_ended: AtomicU64,
}

/// QoE histograms by protocol, observed when sessions end.
struct QoeHistograms {
    startup_s: Histogram,
    rebuffer_ratio: Histogram,
    latency_s: Histogram,
}

const STARTUP_BOUNDS: &[f64] = &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
const RATIO_BOUNDS: &[f64] = &[0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5];
const LATENCY_BOUNDS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

/// Analytics of this node.
pub struct Analytics {
    config: ServiceConfig,
    tracker: Mutex<Tracker>,
    queue: Mutex<Vec<RawEvent>>,
    /// Session records of a batch that failed to write.
    retry: Mutex<Vec<SessionRecord>>,
    store: Store,
    wake: Notify,
    stats: AnalyticsStats,
    qoe: Vec<QoeHistograms>,
    next_connection: AtomicU64,
}

pub use rill_media::wallclock::unix_ms as now_ms;

/// Session records built per hold of the tracker lock.
const RECORDS_PER_HOLD: usize = 1_000;
/// A session in progress is written at most this often (it is written at once when it ends):
/// a player reporting every second would otherwise rewrite its row every second.
const SESSION_SETTLE_MS: i64 = 10_000;

/// How a flush is cut into transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pieces {
    events: usize,
    sessions: usize,
    /// Between two transactions.
    pause: Duration,
}

impl Pieces {
    /// On SQLite one writer holds the whole database at a time: a burst is written in small
    /// transactions with a pause between them, so that the catalog's other writers (the
    /// recorder, the API) are never held up long. PostgreSQL locks rows, not the database: no
    /// pause, and transactions twice as large (larger ones made the writer's synchronous work
    /// per transaction long enough to delay the collector's handlers on 2 cores).
    fn of(dialect: Dialect) -> Pieces {
        match dialect {
            Dialect::Sqlite => Pieces { events: 5_000, sessions: 1_000, pause: Duration::from_millis(10) },
            Dialect::Postgres => Pieces { events: 10_000, sessions: 2_000, pause: Duration::ZERO },
        }
    }

    /// `batch` in pieces of at most `events` reports and `sessions` sessions, in order (the
    /// concurrency samples go with the first).
    fn split(self, batch: Batch) -> Vec<Batch> {
        let Batch { events, sessions, concurrency } = batch;
        let mut events = events.into_iter();
        let mut sessions = sessions.into_iter();
        let mut pieces = vec![Batch { concurrency, ..Batch::default() }];
        loop {
            let piece = pieces.last_mut().expect("one piece at least");
            piece.events.extend(events.by_ref().take(self.events - piece.events.len()));
            piece.sessions.extend(sessions.by_ref().take(self.sessions - piece.sessions.len()));
            if events.len() == 0 && sessions.len() == 0 {
                return pieces;
            }
            pieces.push(Batch::default());
        }
    }
}

impl Analytics {
    pub fn new(store: Store, config: ServiceConfig) -> Arc<Analytics> {
        let tracker = Tracker::new(TrackerConfig {
            max_sessions: config.max_sessions,
            weights: config.weights,
            ..TrackerConfig::default()
        });
        Arc::new(Analytics {
            config,
            tracker: Mutex::new(tracker),
            queue: Mutex::new(Vec::new()),
            retry: Mutex::new(Vec::new()),
            store,
            wake: Notify::new(),
            stats: AnalyticsStats::default(),
            qoe: Protocol::ALL
                .iter()
                .map(|_| QoeHistograms {
                    startup_s: Histogram::new(STARTUP_BOUNDS),
                    rebuffer_ratio: Histogram::new(RATIO_BOUNDS),
                    latency_s: Histogram::new(LATENCY_BOUNDS),
                })
                .collect(),
            next_connection: AtomicU64::new(0),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn stats(&self) -> &AnalyticsStats {
        &self.stats
    }

    /// Applies player reports (one lock for all of them) and queues their raw form.
    /// All or nothing: a full queue refuses the whole batch (the player retries it).
    pub fn observe<'a>(
        &self,
        reports: impl IntoIterator<Item = (&'a str, Report, Option<RawEvent>)>,
        open: &dyn Fn() -> (Protocol, Content, Viewer),
        from_event: bool,
    ) -> Result<usize, Refused> {
        let reports: Vec<_> = reports.into_iter().collect();
        let raw = reports.iter().filter(|r| r.2.is_some()).count();
        {
            let queue = lock(&self.queue);
            if queue.len() + raw > self.config.max_queue {
                self.stats.refused_busy.fetch_add(1, Relaxed);
                return Err(Refused::Busy);
            }
        }
        let mut accepted = Vec::with_capacity(raw);
        {
            let mut tracker = lock(&self.tracker);
            for (id, report, event) in reports {
                if let Err(e) = tracker.observe(id, open, &report, from_event) {
                    self.stats.refused_sessions.fetch_add(1, Relaxed);
                    return Err(e.into());
                }
                accepted.extend(event);
            }
        }
        let n = accepted.len();
        self.stats.reports.fetch_add(n as u64, Relaxed);
        lock(&self.queue).extend(accepted);
        if lock(&self.queue).len() >= 5_000 {
            self.wake.notify_one();
        }
        Ok(n)
    }

    /// Opens the session of a connection (HTTP-FLV, RTMP, SRT, WHEP); it ends when the
    /// returned guard drops. `id`: a stable id, or `None` for a fresh one.
    pub fn connect(
        self: &Arc<Self>,
        id: Option<String>,
        protocol: Protocol,
        content: Content,
        viewer: Viewer,
    ) -> Option<ConnectionSession> {
        let id = id.unwrap_or_else(|| {
            let n = self.next_connection.fetch_add(1, Relaxed);
            format!("{}-{}-{n}", self.config.node, now_ms())
        });
        match lock(&self.tracker).open_connection(&id, protocol, content, viewer, now_ms()) {
            Ok(()) => Some(ConnectionSession { analytics: self.clone(), id, failed: false }),
            Err(_) => {
                self.stats.refused_sessions.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// New statistics of a connection (bytes, RTCP).
    pub fn update_connection(&self, id: &str, report: &Report) {
        lock(&self.tracker).update_connection(id, report);
    }

    /// Bytes of a streamed response, counted when its body ended (see [`Tracker::delivered`]).
    pub fn delivered(&self, id: &str, bytes: u64) {
        if bytes > 0 {
            lock(&self.tracker).delivered(id, bytes);
        }
    }

    /// Ends the session of a connection that is gone (WHEP sessions end in the WebRTC
    /// driver, not in a handler).
    pub fn close_connection(&self, id: &str, failed: bool) {
        lock(&self.tracker).close(id, now_ms(), failed);
    }

    /// Whether session `id` is being tracked (a report for it opens nothing new).
    pub fn is_tracked(&self, id: &str) -> bool {
        lock(&self.tracker).contains(id)
    }

    /// Viewers of one stream now, by protocol.
    pub fn viewers_now(&self, stream: &str) -> ByProtocol {
        lock(&self.tracker).stream_viewers_now(stream, now_ms())
    }

    /// Viewers of every stream now, by protocol.
    pub fn all_viewers_now(&self) -> HashMap<String, ByProtocol> {
        lock(&self.tracker).viewers_now(now_ms())
    }

    /// Sessions in progress (not yet final in the store).
    pub fn live_sessions(&self) -> Vec<SessionRecord> {
        lock(&self.tracker).snapshot()
    }

    /// Counts a malformed report line (skipped).
    pub fn rejected_line(&self) {
        self.stats.rejected_lines.fetch_add(1, Relaxed);
    }

    /// Counts a session refused (too many tracked, or too many new ones from one client).
    pub fn refused_session(&self) {
        self.stats.refused_sessions.fetch_add(1, Relaxed);
    }

    pub fn rate_limited(&self) {
        self.stats.rate_limited.fetch_add(1, Relaxed);
    }

    /// The writer: flushes every `flush_every` (or sooner when the queue fills), samples
    /// concurrency every 10 s, expires sessions, and purges old raw reports hourly.
    pub async fn run(self: Arc<Self>) {
        let mut last_sample = 0i64;
        let mut last_purge = 0i64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.config.flush_every) => {}
                _ = self.wake.notified() => {}
            }
            let now = now_ms();
            let sample_due = now / SAMPLE_MS > last_sample / SAMPLE_MS;
            if sample_due {
                last_sample = now;
            }
            self.flush(now, sample_due).await;
            if now - last_purge > 3_600_000 {
                last_purge = now;
                let before = now - self.config.raw_retention_days as i64 * 86_400_000;
                match self.store.purge_events(before).await {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, "purged old analytics events"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot purge old analytics events"),
                }
            }
        }
    }

    /// At shutdown: ends every open session and writes what is pending.
    pub async fn finish(&self) {
        let now = now_ms();
        {
            let mut tracker = lock(&self.tracker);
            for record in tracker.snapshot() {
                tracker.close(&record.id, now, false);
            }
        }
        self.flush(now, false).await;
    }

    /// One batch: queued raw reports, changed and ended sessions, and (when due) this
    /// node's concurrency sample. A failed write is retried with the next batch (the raw
    /// reports of a batch that keeps failing are dropped once the queue is full).
    pub async fn flush(&self, now: i64, sample: bool) {
        let events = {
            // The next queue starts as large as this one: no doubling reallocations under load.
            let mut queue = lock(&self.queue);
            let capacity = queue.len();
            std::mem::replace(&mut *queue, Vec::with_capacity(capacity))
        };
        let mut batch = Batch { events, ..Batch::default() };
        batch.sessions = std::mem::take(&mut *lock(&self.retry));
        // Changed sessions in pieces, the tracker released between them (handlers wait for
        // one piece at most).
        let pieces = {
            let mut tracker = lock(&self.tracker);
            if sample {
                tracker.mark_connections_changed(now - SESSION_SETTLE_MS);
            }
            tracker.changed_len().div_ceil(RECORDS_PER_HOLD)
        };
        for _ in 0..pieces {
            let piece = lock(&self.tracker).take_changed(now, RECORDS_PER_HOLD, SESSION_SETTLE_MS);
            let last = piece.len() < RECORDS_PER_HOLD;
            batch.sessions.extend(piece);
            if last {
                break;
            }
        }
        {
            let mut tracker = lock(&self.tracker);
            let ended = tracker.expire(now);
            for record in &ended {
                self.observe_qoe(record);
            }
            self.stats.sessions_ended.fetch_add(ended.len() as u64, Relaxed);
            batch.sessions.extend(ended);
            if sample {
                let t = now / SAMPLE_MS * SAMPLE_MS;
                batch.concurrency = tracker
                    .viewers_now(now)
                    .into_iter()
                    .map(|(stream, viewers)| ConcurrencySample { stream, t, node: self.config.node.clone(), viewers })
                    .collect();
            }
        }
        if batch.is_empty() {
            return;
        }
        let cut = Pieces::of(self.store.dialect());
        let mut pieces = cut.split(batch).into_iter();
        while let Some(piece) = pieces.next() {
            if let Err(e) = self.store.write(&piece).await {
                self.stats.write_errors.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "analytics batch not written; retrying with the next one");
                let mut queue = lock(&self.queue);
                let mut retry = lock(&self.retry);
                for piece in std::iter::once(piece).chain(pieces) {
                    let room = self.config.max_queue.saturating_sub(queue.len());
                    queue.extend(piece.events.into_iter().take(room));
                    // Sessions are re-sent next time (upserts are idempotent; newer records of
                    // the same session, sent later in the same batch, win).
                    if retry.len() < self.config.max_sessions {
                        retry.extend(piece.sessions);
                    }
                }
                return;
            }
            self.stats.batches.fetch_add(1, Relaxed);
            self.stats.events_written.fetch_add(piece.events.len() as u64, Relaxed);
            if pieces.len() > 0 && !cut.pause.is_zero() {
                // The catalog's other writers get their turn between transactions.
                tokio::time::sleep(cut.pause).await;
            }
        }
    }

    fn observe_qoe(&self, record: &SessionRecord) {
        let h = &self.qoe[record.protocol.index()];
        if let Some(startup) = record.startup_ms {
            h.startup_s.observe(startup as f64 / 1000.0);
        }
        if record.playing_ms > 0 {
            h.rebuffer_ratio.observe(record.rebuffer_ratio());
        }
        if let Some(latency) = record.latency_ms {
            h.latency_s.observe(latency as f64 / 1000.0);
        }
    }

    /// `rill_analytics_*` families.
    pub fn write_metrics(&self, out: &mut Exposition) {
        let s = &self.stats;
        let counters: [(&'static str, &'static str, &AtomicU64); 9] = [
            ("rill_analytics_reports_total", "Player reports (CMCD requests and events) accepted.", &s.reports),
            ("rill_analytics_rejected_lines_total", "Malformed CMCD lines or values skipped.", &s.rejected_lines),
            (
                "rill_analytics_refused_busy_total",
                "Report batches refused with 429 because the write queue was full.",
                &s.refused_busy,
            ),
            (
                "rill_analytics_refused_sessions_total",
                "New sessions not tracked: the session table was full, or the client address over client_sessions_per_min.",
                &s.refused_sessions,
            ),
            (
                "rill_analytics_rate_limited_total",
                "Collector requests refused by the per-client rate limit.",
                &s.rate_limited,
            ),
            ("rill_analytics_batches_total", "Batches written to the database.", &s.batches),
            (
                "rill_analytics_events_written_total",
                "Player reports written to the database (raw events).",
                &s.events_written,
            ),
            ("rill_analytics_write_errors_total", "Batches that failed to write (retried).", &s.write_errors),
            ("rill_analytics_sessions_ended_total", "Viewer sessions that ended.", &s.sessions_ended),
        ];
        for (name, help, counter) in counters {
            out.sample(name, Kind::Counter, help, count(counter));
        }
        out.sample(
            "rill_analytics_queue",
            Kind::Gauge,
            "Raw reports waiting to be written.",
            lock(&self.queue).len() as f64,
        );
        let (sessions, viewers) = {
            let tracker = lock(&self.tracker);
            (tracker.len(), tracker.viewers_now(now_ms()))
        };
        out.sample(
            "rill_analytics_sessions",
            Kind::Gauge,
            "Viewer sessions tracked (live or ending).",
            sessions as f64,
        );
        const VIEWERS: &str = "Viewers now by protocol, HLS/DASH included (sessions seen in the last 20 s).";
        out.declare("rill_viewers_now", Kind::Gauge, VIEWERS);
        for p in Protocol::ALL {
            let n: u64 = viewers.values().map(|v| v[p.index()]).sum();
            out.labelled("rill_viewers_now", Kind::Gauge, VIEWERS, &[("protocol", p.as_str())], n as f64);
        }
        for p in Protocol::ALL {
            let h = &self.qoe[p.index()];
            let labels = [("protocol", p.as_str())];
            out.histogram("rill_qoe_startup_seconds", "Startup time of ended sessions.", &labels, &h.startup_s);
            out.histogram(
                "rill_qoe_rebuffer_ratio",
                "Rebuffer time / (playing + rebuffer time) of ended sessions.",
                &labels,
                &h.rebuffer_ratio,
            );
            out.histogram(
                "rill_qoe_live_latency_seconds",
                "Live latency (CMCD ltc) of ended sessions.",
                &labels,
                &h.latency_s,
            );
        }
    }
}

/// An open connection's session; dropping it ends the session.
pub struct ConnectionSession {
    analytics: Arc<Analytics>,
    id: String,
    failed: bool,
}

impl ConnectionSession {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The connection ended on an error before any media.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Adds bytes delivered.
    pub fn delivered(&self, bytes: u64) {
        let report = Report { at_ms: now_ms(), media: true, bytes, ..Report::default() };
        self.analytics.update_connection(&self.id, &report);
    }
}

impl Drop for ConnectionSession {
    fn drop(&mut self) {
        self.analytics.close_connection(&self.id, self.failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_written_in_bounded_transactions_in_order() {
        let event =
            |i: usize| RawEvent { at: i as i64, session_id: String::new(), kind: "t".into(), data: String::new() };
        let batch = Batch {
            events: (0..12_001).map(event).collect(),
            concurrency: vec![ConcurrencySample { stream: "s".into(), t: 0, node: "n".into(), viewers: [0; 6] }],
            sessions: vec![],
        };
        let pieces = Pieces::of(Dialect::Sqlite).split(batch);
        let sizes: Vec<usize> = pieces.iter().map(|p| p.events.len()).collect();
        assert_eq!(sizes, [5_000, 5_000, 2_001]);
        assert_eq!(pieces[0].concurrency.len(), 1);
        let order: Vec<i64> = pieces.iter().flat_map(|p| p.events.iter().map(|e| e.at)).collect();
        assert!(order.windows(2).all(|w| w[0] + 1 == w[1]));
        assert_eq!(Pieces::of(Dialect::Postgres).split(Batch::default()).len(), 1);
    }
}
