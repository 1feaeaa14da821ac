//! `catalog-search`: fills a video catalog with synthetic videos and measures how fast it lists
//! and searches them, on SQLite and (when `RILL_BENCH_POSTGRES_URL` is set) PostgreSQL.
//!
//! For each database it:
//! 1. opens a fresh catalog: a SQLite file in a new temp directory, or a new PostgreSQL
//!    database `rill_bench_<random>` created through `RILL_BENCH_POSTGRES_URL` (any database on
//!    the server, e.g. the `postgres` one `scripts/postgres.sh` prints); both are removed at the
//!    end unless `--keep`;
//! 2. inserts `--videos` videos (default 100 000) in transactions of 1000 with
//!    `Catalog::import_videos`, timing the whole load; then times `--creates` (default 1000)
//!    single `create_video` calls (one transaction each, as the recorder does);
//! 3. closes and reopens the catalog, as after a restart (SQLite's `Catalog::close` and
//!    `connect` run `PRAGMA optimize`, which gathers planner statistics), and on PostgreSQL runs
//!    `VACUUM ANALYZE` (what autovacuum does soon after a bulk load: planner statistics, and
//!    the visibility map that lets counts use index-only scans);
//! 4. times `--queries` (default 200) searches (`list` with `q`, limit 20, public videos, the
//!    way the HTTP API searches) after 20 untimed warm-up searches, and as many plain listings
//!    (no `q`: newest first, deeper pages, and stream, status, tag and date filters).
//!
//! The corpus is the same on every run and database (xorshift PRNG with a fixed `--seed`): a
//! vocabulary of 119 common English words followed by 4000 made-up words from syllables, drawn
//! with a Zipf-like (1/rank) distribution, so a few words are in a large share of the videos
//! and most are rare. Titles have 3–8 words, descriptions 0–60, 0–5 tags from the 300 most
//! common words, 200 streams (also Zipf), 85 % public / 10 % unlisted / 5 % private, 97 %
//! ready, creation times 10 minutes apart on average.
//!
//! Searches are 1–3 words: common (among the 40 most frequent words), any (Zipf), rare (uniform
//! over the vocabulary, so mostly the long tail), two and three words, and prefixes (a word cut
//! to its first 3–4 letters, as when typing). Output: a table per database with median, p95 and
//! p99 latency in milliseconds and the mean number of matches (`total`).
//!
//! ```text
//! cargo run --release -p rill-benches --bin catalog-search -- [--videos 100000] [--queries 200]
//! RILL_BENCH_POSTGRES_URL=$(scripts/postgres.sh start /tmp/rill-pg 55432) cargo run --release ...
//! ```

use anyhow::{anyhow, bail, Context, Result};
use rill_vod::catalog::{Catalog, NewVideo, Video, VideoQuery, VideoSource, VideoStatus, Visibility};
use rill_vod::VideoId;
use sqlx::{Connection, Executor};
use std::time::{Duration, Instant};

const COMMON_WORDS: &str = "live music stream game night show session morning evening coffee chat talk news \
    weekly update review first look guide tutorial build coding rust server video audio studio concert band \
    guitar piano drums jazz rock metal indie festival city travel walk beach mountain river forest sunset \
    sunrise rain snow winter summer spring autumn food cooking recipe kitchen bread pasta pizza garden \
    plants birds cats dogs football soccer tennis race match final highlights interview podcast episode \
    part one two three speedrun tournament practice lesson school science space rocket launch history \
    art painting drawing design photo camera drone timelapse car bike train flight hotel market fair \
    dance party club radio DJ mix retro classic new old quiet loud slow fast deep ambient";
const MADE_UP_WORDS: usize = 4000;
const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ru", "ten", "sa", "vo", "qui", "bre", "dan", "el", "ori", "pa", "zu", "nek", "tor", "ghi", "fa",
    "wen", "ly", "mar", "os", "ith", "ce",
];
const BATCH: usize = 1000;
const WARMUP_QUERIES: usize = 20;
const STREAMS: usize = 200;
const TAG_WORDS: usize = 300;
const T0: i64 = 1_600_000_000_000;

struct Opts {
    videos: usize,
    queries: usize,
    creates: usize,
    seed: u64,
    keep: bool,
}

fn usage() -> &'static str {
    "usage: catalog-search [--videos N=100000] [--queries N=200] [--creates N=1000] [--seed S=42] [--keep]\n\
     PostgreSQL too when RILL_BENCH_POSTGRES_URL is set (a scratch database is created on that server)"
}

fn parse_opts() -> Result<Opts> {
    let mut opts = Opts { videos: 100_000, queries: 200, creates: 1000, seed: 42, keep: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| anyhow!("{name} needs a value\n{}", usage()));
        match arg.as_str() {
            "--videos" => opts.videos = value("--videos")?.parse().context("--videos")?,
            "--queries" => opts.queries = value("--queries")?.parse().context("--queries")?,
            "--creates" => opts.creates = value("--creates")?.parse().context("--creates")?,
            "--seed" => opts.seed = value("--seed")?.parse().context("--seed")?,
            "--keep" => opts.keep = true,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{}", usage()),
        }
    }
    if opts.videos == 0 || opts.queries == 0 {
        bail!("--videos and --queries must be > 0");
    }
    Ok(opts)
}

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// In `0..n`, index k with probability ≈ 1/(k+1) (log-uniform).
    fn zipf(&mut self, n: usize) -> usize {
        ((n as f64 + 1.0).powf(self.unit()) as usize).saturating_sub(1).min(n - 1)
    }

    fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }
}

/// Common words first (they get the high Zipf ranks), then made-up ones.
fn vocabulary(rng: &mut Rng) -> Vec<String> {
    let mut words: Vec<String> = COMMON_WORDS.split_whitespace().map(str::to_lowercase).collect();
    while words.len() < COMMON_WORDS.split_whitespace().count() + MADE_UP_WORDS {
        let syllables = rng.between(2, 4);
        let word: String = (0..syllables).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect();
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

fn sentence(rng: &mut Rng, words: &[String], count: usize) -> String {
    (0..count).map(|_| words[rng.zipf(words.len())].as_str()).collect::<Vec<_>>().join(" ")
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn synthetic_video(rng: &mut Rng, words: &[String], index: usize) -> Video {
    let created_at_ms = T0 + index as i64 * 600_000 + rng.below(300_000) as i64;
    let title_words = rng.between(3, 8);
    let description_words = if rng.below(10) < 3 { 0 } else { rng.between(10, 60) };
    let tag_count = rng.between(0, 5);
    let visibility = match rng.below(100) {
        0..=84 => Visibility::Public,
        85..=94 => Visibility::Unlisted,
        _ => Visibility::Private,
    };
    let status = match rng.below(100) {
        0..=96 => VideoStatus::Ready,
        97..=98 => VideoStatus::Failed,
        _ => VideoStatus::Recording,
    };
    let duration_ms = rng.between(60_000, 4 * 3_600_000) as i64;
    Video {
        id: VideoId::generate().to_string(),
        title: capitalized(&sentence(rng, words, title_words)),
        description: capitalized(&sentence(rng, words, description_words)),
        tags: (0..tag_count).map(|_| words[rng.zipf(TAG_WORDS)].clone()).collect(),
        visibility,
        status,
        error: (status == VideoStatus::Failed).then(|| "encoder disconnected".to_owned()),
        stream: format!("stream-{}", rng.zipf(STREAMS)),
        duration_ms,
        size_bytes: duration_ms * 400,
        thumbnail: Some(format!("thumbs/{index}.jpg")),
        created_at_ms,
        ended_at_ms: (status != VideoStatus::Recording).then_some(created_at_ms + duration_ms),
        updated_at_ms: created_at_ms + duration_ms,
        frames_lost: 0,
        lost_ms: 0,
        source: VideoSource::Recording,
    }
}

/// A timed kind of request.
struct Series {
    name: &'static str,
    millis: Vec<f64>,
    matches: Vec<i64>,
}

impl Series {
    fn new(name: &'static str) -> Series {
        Series { name, millis: Vec::new(), matches: Vec::new() }
    }

    fn record(&mut self, elapsed: Duration, matches: i64) {
        self.millis.push(elapsed.as_secs_f64() * 1000.0);
        self.matches.push(matches);
    }

    fn percentile(sorted: &[f64], p: f64) -> f64 {
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    fn row(&self, backend: &str) -> String {
        let mut sorted = self.millis.clone();
        sorted.sort_by(f64::total_cmp);
        let mean_matches = self.matches.iter().sum::<i64>() as f64 / self.matches.len().max(1) as f64;
        format!(
            "| {backend} | {} | {} | {:.2} | {:.2} | {:.2} | {:.0} |",
            self.name,
            sorted.len(),
            Series::percentile(&sorted, 0.5),
            Series::percentile(&sorted, 0.95),
            Series::percentile(&sorted, 0.99),
            mean_matches,
        )
    }
}

/// The searches: (series index, text).
fn search_texts(rng: &mut Rng, words: &[String], count: usize) -> Vec<(usize, String)> {
    let prefix = |word: &str, rng: &mut Rng| word.chars().take(rng.between(3, 4)).collect::<String>();
    (0..count)
        .map(|i| {
            let kind = i % 6;
            let text = match kind {
                0 => words[rng.below(40)].clone(),
                1 => words[rng.zipf(words.len())].clone(),
                2 => words[rng.below(words.len())].clone(),
                3 => format!("{} {}", words[rng.zipf(words.len())], words[rng.zipf(words.len())]),
                4 => (0..3).map(|_| words[rng.zipf(words.len())].as_str()).collect::<Vec<_>>().join(" "),
                _ => prefix(&words[rng.zipf(words.len())], rng),
            };
            (kind, text)
        })
        .collect()
}

const SEARCH_SERIES: [&str; 6] = [
    "search: 1 common word",
    "search: 1 word (Zipf)",
    "search: 1 rare word",
    "search: 2 words",
    "search: 3 words",
    "search: prefix (3-4 letters)",
];

/// The plain listings: (series index, query).
fn list_queries(rng: &mut Rng, count: usize, videos: usize) -> Vec<(usize, VideoQuery)> {
    (0..count)
        .map(|i| {
            let kind = i % 5;
            let mut query = VideoQuery::default();
            match kind {
                0 => {}
                1 => query.offset = Some(20 * rng.below(50) as u32),
                2 => query.stream = Some(format!("stream-{}", rng.zipf(STREAMS))),
                3 => query.tag = Some(COMMON_WORDS.split_whitespace().nth(rng.below(40)).unwrap().to_lowercase()),
                _ => {
                    let start = T0 + rng.below(videos) as i64 * 600_000;
                    query.since_ms = Some(start);
                    query.until_ms = Some(start + 7 * 24 * 3_600_000);
                    query.status = Some(VideoStatus::Ready);
                }
            }
            (kind, query)
        })
        .collect()
}

const LIST_SERIES: [&str; 5] = [
    "list: newest first, page 1",
    "list: newest first, pages 1-50",
    "list: by stream",
    "list: by tag",
    "list: ready, one week",
];

struct Report {
    backend: &'static str,
    load: String,
    rows: Vec<String>,
}

/// Loads the corpus into the (empty) catalog at `url`, reopens it and times requests.
async fn bench(backend: &'static str, url: &str, opts: &Opts) -> Result<Report> {
    let catalog = Catalog::connect(url).await?;
    let mut rng = Rng::new(opts.seed);
    let words = vocabulary(&mut rng);
    let corpus: Vec<Video> = (0..opts.videos).map(|i| synthetic_video(&mut rng, &words, i)).collect();

    let started = Instant::now();
    for (n, batch) in corpus.chunks(BATCH).enumerate() {
        catalog.import_videos(batch).await?;
        if n % 20 == 19 {
            eprintln!("{backend}: {} videos in {:.1} s", (n + 1) * BATCH, started.elapsed().as_secs_f64());
        }
    }
    let load_seconds = started.elapsed().as_secs_f64();

    let mut creates = Series::new("create_video (1 transaction each)");
    for i in 0..opts.creates {
        let title = capitalized(&sentence(&mut rng, &words, 5));
        let new = NewVideo {
            id: VideoId::generate(),
            title: &title,
            stream: "stream-new",
            visibility: Visibility::Public,
            created_at_ms: T0 + (opts.videos + i) as i64 * 600_000,
        };
        let started = Instant::now();
        catalog.create_video(&new).await?;
        creates.record(started.elapsed(), 1);
    }

    catalog.close().await;
    if url.starts_with("postgres") {
        let mut connection = sqlx::PgConnection::connect(url).await?;
        connection.execute("VACUUM ANALYZE").await?;
        connection.close().await?;
    }
    let catalog = Catalog::connect(url).await?;

    let mut searches: Vec<Series> = SEARCH_SERIES.iter().map(|name| Series::new(name)).collect();
    let mut all_searches = Series::new("search: all");
    let texts = search_texts(&mut rng, &words, WARMUP_QUERIES + opts.queries);
    for (n, (kind, text)) in texts.into_iter().enumerate() {
        let query = VideoQuery { q: Some(text), ..VideoQuery::default() };
        let started = Instant::now();
        let page = catalog.list(&query).await?;
        let elapsed = started.elapsed();
        if n >= WARMUP_QUERIES {
            searches[kind].record(elapsed, page.total);
            all_searches.record(elapsed, page.total);
        }
    }

    let mut lists: Vec<Series> = LIST_SERIES.iter().map(|name| Series::new(name)).collect();
    let mut all_lists = Series::new("list: all");
    for (kind, query) in list_queries(&mut rng, opts.queries, opts.videos) {
        let started = Instant::now();
        let page = catalog.list(&query).await?;
        let elapsed = started.elapsed();
        lists[kind].record(elapsed, page.total);
        all_lists.record(elapsed, page.total);
    }

    let mut rows = vec![all_searches.row(backend)];
    rows.extend(searches.iter().map(|series| series.row(backend)));
    rows.push(all_lists.row(backend));
    rows.extend(lists.iter().map(|series| series.row(backend)));
    rows.push(creates.row(backend));
    catalog.close().await;
    let load = format!(
        "| {backend} | {} videos | {load_seconds:.1} s | {:.0} videos/s |",
        opts.videos,
        opts.videos as f64 / load_seconds
    );
    Ok(Report { backend, load, rows })
}

fn print_reports(reports: &[Report]) {
    println!("\n| database | load | time | rate |\n|---|---|---|---|");
    for report in reports {
        println!("{}", report.load);
    }
    println!(
        "\n| database | request | n | median ms | p95 ms | p99 ms | mean matches |\n|---|---|---|---|---|---|---|"
    );
    for report in reports {
        for row in &report.rows {
            println!("{row}");
        }
    }
    let names: Vec<&str> = reports.iter().map(|report| report.backend).collect();
    eprintln!("done: {}", names.join(", "));
}

fn with_database(url: &str, database: &str) -> String {
    let authority = url.find("://").map_or(0, |at| at + 3);
    let path = url[authority..].find(['/', '?']).map_or(url.len(), |at| authority + at);
    let query = url[path..].find('?').map_or("", |at| &url[path + at..]);
    format!("{}/{database}{query}", &url[..path])
}

async fn run_sqlite(opts: &Opts) -> Result<Report> {
    let dir = std::env::temp_dir().join(format!("rill-catalog-bench-{}", VideoId::generate()));
    let path = dir.join("rill.db");
    let report = bench("SQLite", &format!("sqlite://{}", path.display()), opts).await;
    let bytes: u64 = std::fs::read_dir(&dir)?.filter_map(|entry| entry.ok()?.metadata().ok()).map(|m| m.len()).sum();
    eprintln!("SQLite: database files {:.1} MB in {}", bytes as f64 / 1e6, dir.display());
    if !opts.keep {
        std::fs::remove_dir_all(&dir)?;
    }
    report
}

async fn run_postgres(opts: &Opts, admin_url: &str) -> Result<Report> {
    let database = format!("rill_bench_{}", VideoId::generate());
    let mut admin = sqlx::PgConnection::connect(admin_url).await.context("RILL_BENCH_POSTGRES_URL")?;
    admin.execute(format!("CREATE DATABASE {database}").as_str()).await?;
    let url = with_database(admin_url, &database);
    let report = bench("PostgreSQL", &url, opts).await;
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size($1)").bind(&database).fetch_one(&mut admin).await?;
    eprintln!("PostgreSQL: database {database} is {:.1} MB", size as f64 / 1e6);
    if !opts.keep {
        admin.execute(format!("DROP DATABASE {database} WITH (FORCE)").as_str()).await?;
    }
    admin.close().await?;
    report
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let opts = parse_opts()?;
    let mut reports = vec![run_sqlite(&opts).await?];
    match std::env::var("RILL_BENCH_POSTGRES_URL") {
        Ok(url) => reports.push(run_postgres(&opts, &url).await?),
        Err(_) => eprintln!("PostgreSQL skipped: RILL_BENCH_POSTGRES_URL unset"),
    }
    print_reports(&reports);
    Ok(())
}
