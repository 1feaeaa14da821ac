//! `analytics-report`: times the analytics reports (`video_report`, `stream_report`,
//! `overview`) over 30 days of a synthetic audience, on SQLite and PostgreSQL.
//!
//! The data set is written through [`Store::write`], the way the collector's writer does, in
//! batches (one transaction each): `--sessions` sessions (default 200 000) spread evenly over
//! the 30 days before now, each with `--events` raw player reports (default 50: 10 M in
//! total, ≈ 130 bytes each), 10 live streams and 100 videos. 70 % of the sessions watch a
//! video (drawn with a 1/rank popularity: the top video gets ≈ 19 % of them), 30 % a live
//! stream (its recording is a video too: `rec-<stream>`); 75 % qualify as views (at most one
//! per visitor, content and hour, as the store decides); 40 000 visitors, 12 countries, 4
//! devices, 6 browsers, 5 referrers, 4 renditions. Concurrency samples: each stream is live
//! 12 h a day, one sample every 10 s (≈ 130 000 per stream).
//!
//! After loading, the catalog is closed and reopened (SQLite runs `PRAGMA optimize` then; on
//! PostgreSQL the tool runs `VACUUM ANALYZE`), and each report is run once to warm up, then
//! `--runs` times (default 7), for the most popular video, a median one, the busiest stream and
//! the overview; it prints the median, min and max.
//!
//! ```text
//! cargo build --release -p rill-benches --bin analytics-report
//! analytics-report                                   # SQLite in a new temporary directory
//! analytics-report --url sqlite:///tmp/a.db --keep   # keep the file; rerun with --no-load
//! RILL_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:55432/postgres analytics-report --postgres
//! ```

use anyhow::{bail, Context, Result};
use rill_analytics::report::Period;
use rill_analytics::score::Outcome;
use rill_analytics::session::{Protocol, SessionRecord};
use rill_analytics::store::{Batch, ConcurrencySample, RawEvent, Store};
use rill_vod::catalog::Catalog;
use sqlx::{Connection, Executor};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY_MS: i64 = 86_400_000;
const DAYS: i64 = 30;
const VIDEOS: usize = 100;
const STREAMS: usize = 10;
const VISITORS: u64 = 40_000;
/// Sessions per written batch.
const BATCH_SESSIONS: usize = 2_000;

struct Opts {
    sessions: usize,
    events: usize,
    runs: usize,
    url: Option<String>,
    postgres: bool,
    load: bool,
    keep: bool,
    seed: u64,
}

fn parse_opts() -> Result<Opts> {
    let mut o =
        Opts { sessions: 200_000, events: 50, runs: 7, url: None, postgres: false, load: true, keep: false, seed: 42 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--sessions" => o.sessions = v()?.parse()?,
            "--events" => o.events = v()?.parse()?,
            "--runs" => o.runs = v()?.parse()?,
            "--url" => o.url = Some(v()?),
            "--postgres" => o.postgres = true,
            "--no-load" => o.load = false,
            "--keep" => o.keep = true,
            "--seed" => o.seed = v()?.parse()?,
            _ => bail!(
                "usage: analytics-report [--sessions N] [--events N] [--runs N] [--url URL | --postgres] [--no-load] \
                 [--keep] [--seed S]"
            ),
        }
    }
    Ok(o)
}

/// xorshift64*: a fixed-seed generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len() as u64) as usize]
}

/// The video of rank `r` (0 = most popular), drawn with probability ∝ 1/(r+1).
fn popular_video(rng: &mut Rng, cumulative: &[f64]) -> usize {
    let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * cumulative[cumulative.len() - 1];
    cumulative.partition_point(|&c| c < x).min(cumulative.len() - 1)
}

fn session(rng: &mut Rng, i: usize, since: i64, spacing: f64, cumulative: &[f64]) -> SessionRecord {
    let started_at = since + (i as f64 * spacing) as i64 + rng.below(1000) as i64;
    let live = rng.chance(0.3);
    let (stream, video, protocol) = if live {
        let s = rng.below(STREAMS as u64) as usize;
        (Some(format!("stream-{s}")), Some(format!("rec-stream-{s}")), [Protocol::Hls, Protocol::Dash][i % 2])
    } else {
        (None, Some(format!("video-{:03}", popular_video(rng, cumulative))), Protocol::Hls)
    };
    let outcome = if rng.chance(0.05) {
        Outcome::ExitBeforeStart
    } else if rng.chance(0.01) {
        Outcome::Failed
    } else {
        Outcome::Played
    };
    let played = outcome == Outcome::Played;
    let playing_ms = if played { 5_000 + rng.below(1_800_000) } else { 0 };
    let rebuffer_ms = if played && rng.chance(0.2) { rng.below(10_000) } else { 0 };
    let view_at = (played && playing_ms >= 10_000 && rng.chance(0.8)).then_some(started_at + 10_000);
    let watched: u128 = if live || !played {
        0
    } else {
        let from = rng.below(30) as u32;
        let to = (from + 1 + rng.below(100) as u32).min(100);
        (from..to).fold(0u128, |w, b| w | 1u128 << b)
    };
    SessionRecord {
        id: format!("s{i:07}-{:08x}", rng.next() as u32),
        stream,
        video,
        protocol,
        started_at,
        last_seen: started_at + playing_ms as i64 + rebuffer_ms as i64,
        ended_at: Some(started_at + playing_ms as i64 + rebuffer_ms as i64),
        playing_ms,
        rebuffer_ms,
        rebuffer_count: if rebuffer_ms > 0 { 1 + rng.below(4) } else { 0 },
        startup_ms: played.then(|| 200 + rng.below(3000)),
        outcome,
        errors: u64::from(outcome == Outcome::Failed),
        bitrate_kbps: played.then(|| [800, 1600, 3200, 5000][rng.below(4) as usize]),
        switches_up: rng.below(3),
        switches_down: rng.below(3),
        dropped_frames: rng.below(50),
        latency_ms: (live && played).then(|| 1_500 + rng.below(4_000)),
        rtt_ms: None,
        lost_packets: 0,
        bytes: playing_ms * 300,
        visitor: format!("h:{:016x}", rng.below(VISITORS).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        country: Some(pick(rng, &["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "ES", "IT", "NL", "SE"]).to_owned()),
        device: pick(rng, &["desktop", "desktop", "mobile", "mobile", "tablet", "tv"]).to_owned(),
        browser: pick(rng, &["Chrome", "Chrome", "Safari", "Firefox", "Edge", "Samsung Internet"]).to_owned(),
        os: pick(rng, &["Windows", "macOS", "Android", "iOS", "Linux"]).to_owned(),
        referrer: rng.chance(0.4).then(|| {
            pick(rng, &["www.google.com", "t.co", "www.reddit.com", "news.ycombinator.com", "example.org"]).to_owned()
        }),
        rendition: played.then(|| pick(rng, &["1080p", "720p", "480p", "source"]).to_owned()),
        watched,
        view_at,
        score: rng.below(1001) as f64 / 10.0,
    }
}

fn events(rng: &mut Rng, s: &SessionRecord, n: usize, out: &mut Vec<RawEvent>) {
    let cid = match (&s.stream, &s.video) {
        (Some(stream), _) => format!("live/{stream}"),
        (None, Some(video)) => format!("vod/{video}"),
        _ => String::new(),
    };
    let step = ((s.last_seen - s.started_at) / n.max(1) as i64).max(1_000);
    for k in 0..n {
        let at = s.started_at + k as i64 * step;
        let (kind, sta) = match k {
            0 => ("ps", "s"),
            1 => ("ps", "p"),
            _ if k + 1 == n => ("ps", "e"),
            _ => ("t", "p"),
        };
        out.push(RawEvent {
            at,
            session_id: s.id.clone(),
            kind: kind.to_owned(),
            data: format!(
                "bl=({}),br=({}),cid=\"{cid}\",e={kind},ot=v,pt={},sid=\"{}\",sta={sta},ts={at},v=2",
                5_000 + rng.below(20_000),
                s.bitrate_kbps.unwrap_or(800),
                at - s.started_at,
                s.id
            ),
        });
    }
}

async fn load(store: &Store, opts: &Opts, now: i64) -> Result<()> {
    let mut rng = Rng(opts.seed | 1);
    let cumulative: Vec<f64> = (0..VIDEOS)
        .scan(0.0, |sum, r| {
            *sum += 1.0 / (r + 1) as f64;
            Some(*sum)
        })
        .collect();
    let since = now - DAYS * DAY_MS;
    let spacing = (DAYS * DAY_MS) as f64 / opts.sessions as f64;
    let started = Instant::now();
    let mut written_events = 0usize;
    let mut i = 0;
    while i < opts.sessions {
        let mut batch = Batch::default();
        for _ in 0..BATCH_SESSIONS.min(opts.sessions - i) {
            let s = session(&mut rng, i, since, spacing, &cumulative);
            events(&mut rng, &s, opts.events, &mut batch.events);
            batch.sessions.push(s);
            i += 1;
        }
        written_events += batch.events.len();
        store.write(&batch).await?;
        if i % 20_000 == 0 {
            eprintln!(
                "  {i} sessions, {written_events} events in {:.1} s ({:.0} events/s)",
                started.elapsed().as_secs_f64(),
                written_events as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    // Concurrency: every stream live 12 h a day (each its own hours), a sample every 10 s.
    let mut samples = Vec::new();
    for day in 0..DAYS {
        for s in 0..STREAMS {
            let from = since + day * DAY_MS + (s as i64 * 3_600_000) % (12 * 3_600_000);
            for k in 0..(12 * 360) {
                let t = (from + k * 10_000) / 10_000 * 10_000;
                let base = 50.0 + (k as f64 / 4320.0 * std::f64::consts::PI).sin() * 400.0;
                let hls = base as u64 + rng.below(30);
                samples.push(ConcurrencySample {
                    stream: format!("stream-{s}"),
                    t,
                    node: "bench".into(),
                    viewers: [rng.below(5), rng.below(5), 0, rng.below(10), hls, hls / 4],
                });
            }
        }
        if samples.len() >= 100_000 || day == DAYS - 1 {
            store.write(&Batch { concurrency: std::mem::take(&mut samples), ..Batch::default() }).await?;
        }
    }
    eprintln!("  loaded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn time<F, Fut, T>(runs: usize, mut f: F) -> Result<(f64, f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, rill_analytics::report::ReportError>>,
{
    f().await?; // warm-up
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        f().await?;
        times.push(ms(started.elapsed()));
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0], times[times.len() - 1]))
}

async fn bench(backend: &str, url: &str, opts: &Opts) -> Result<()> {
    let catalog = Catalog::connect(url).await?;
    let store = Store::open(catalog.pool().clone(), catalog.dialect()).await?;
    let now = match opts.load {
        true => SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64,
        // The data's own end: the newest session plus an hour.
        false => {
            sqlx::query_scalar::<_, i64>("SELECT MAX(started_at) FROM analytics_sessions")
                .fetch_one(catalog.pool())
                .await?
                + 3_600_000
        }
    };
    if opts.load {
        eprintln!("{backend}: loading {} sessions × {} events", opts.sessions, opts.events);
        load(&store, opts, now).await?;
    }
    catalog.close().await;
    if url.starts_with("postgres") {
        let mut connection = sqlx::PgConnection::connect(url).await?;
        connection.execute("VACUUM ANALYZE").await?;
        connection.close().await?;
    }
    let catalog = Catalog::connect(url).await?;
    let store = Store::open(catalog.pool().clone(), catalog.dialect()).await?;
    let count = |sql: &'static str| {
        let pool = catalog.pool().clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await }
    };
    let top: String =
        sqlx::query_scalar("SELECT video FROM analytics_sessions GROUP BY video ORDER BY COUNT(*) DESC LIMIT 1")
            .fetch_one(catalog.pool())
            .await?;
    eprintln!(
        "{backend}: {} sessions, {} views, {} events, {} concurrency samples; top video {top} ({} sessions)",
        count("SELECT COUNT(*) FROM analytics_sessions").await?,
        count("SELECT COUNT(*) FROM analytics_views").await?,
        count("SELECT COUNT(*) FROM analytics_events").await?,
        count("SELECT COUNT(*) FROM analytics_concurrency").await?,
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM analytics_sessions WHERE video = $1")
            .bind(&top)
            .fetch_one(catalog.pool())
            .await?,
    );
    let period = Period { since: now - DAYS * DAY_MS, until: now };
    let runs = opts.runs;
    println!("| database | report | median ms | min ms | max ms |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, (median, min, max): (f64, f64, f64)| {
        println!("| {backend} | {name} | {median:.1} | {min:.1} | {max:.1} |");
    };
    row("video_report (top video, 30 d)", time(runs, || store.video_report(&top, period)).await?);
    row("video_report (video-020, 30 d)", time(runs, || store.video_report("video-020", period)).await?);
    row("stream_report (stream-0, 30 d)", time(runs, || store.stream_report("stream-0", period, [0; 6])).await?);
    row("overview (30 d)", time(runs, || store.overview(period)).await?);
    catalog.close().await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let opts = parse_opts()?;
    if opts.postgres {
        let admin = std::env::var("RILL_BENCH_POSTGRES_URL").context("--postgres needs RILL_BENCH_POSTGRES_URL")?;
        let db = "rill_analytics_bench";
        let mut connection = sqlx::PgConnection::connect(&admin).await?;
        if opts.load {
            connection.execute(format!("DROP DATABASE IF EXISTS {db}").as_str()).await?;
            connection.execute(format!("CREATE DATABASE {db}").as_str()).await?;
        }
        let url = format!("{}/{db}", admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base));
        let result = bench("PostgreSQL", &url, &opts).await;
        if !opts.keep {
            connection.execute(format!("DROP DATABASE IF EXISTS {db}").as_str()).await?;
        }
        return result;
    }
    let (url, dir) = match &opts.url {
        Some(url) => (url.clone(), None),
        None => {
            let dir = std::env::temp_dir().join(format!("rill-analytics-report-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (format!("sqlite://{}", dir.join("rill.db").display()), Some(dir))
        }
    };
    let result = bench("SQLite", &url, &opts).await;
    if let (Some(dir), false) = (dir, opts.keep) {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}
