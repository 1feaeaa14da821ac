//! `hls-load`: holds N concurrent LL-HLS clients on one media playlist and reports what they
//! get, whether they keep up with the live edge, and what serving them costs the server.
//!
//! Each client owns one HTTP/1.1 keep-alive connection (a minimal client over `TcpStream`, no
//! HTTP library) and behaves like a low-latency player (RFC 8216bis):
//! 1. `GET media.m3u8` (no directives); start at the `EXT-X-PRELOAD-HINT` part (the live edge).
//! 2. `--mode hint` (default): `GET` the hinted part; the server holds the request until the
//!    part exists. Then a playlist reload with `_HLS_msn`/`_HLS_part` of that part (answered
//!    at once, since the part exists) gives the next hint. Repeat.
//!
//!    `--mode reload` (what hls.js does): a blocking playlist reload with `_HLS_msn`/`_HLS_part`
//!    of the playlist's preload hint (held until that part exists), then `GET` every part the
//!    new playlist lists after the newest one the client has. Repeat.
//!
//!    In both modes a client that fell behind first fetches, in order, every listed part newer
//!    than its newest one (catch-up) instead of skipping to the edge; if a part it needs is no
//!    longer listed it jumps to the edge and counts a `resync`. A hinted part that never comes
//!    into existence (the segment ended before it: Rill then answers 404) is counted as
//!    `hint_404`, not as an error; the next reload asks for the hinted position, which the
//!    next segment's first part satisfies.
//!    Errors (a status other than 200, a timeout, a connection failure) are counted by status;
//!    after an error the client reconnects if needed, waits 200 ms and reloads the playlist
//!    without directives.
//! 3. Clients start evenly spread over `--ramp` seconds; after `--warmup` more seconds a
//!    measurement window of `--seconds` begins.
//!
//! Live edge and lag: a probe client on its own thread (not counted in the totals) follows the
//! playlist with blocking reloads and records, for every part, its end as wall-clock time
//! (`EXT-X-PROGRAM-DATE-TIME` of the segment + the durations of the parts before it + its own).
//! Once per second each client's newest fetched part is compared with the newest part the
//! probe saw: a client is *behind* when that difference exceeds `--behind` seconds (default
//! 1.0). `age` is wall clock now − end of the client's newest part (a client at the edge
//! waiting for the next 200 ms part sees 0–0.2 s plus delivery time; the 1 s sampling is
//! phase-locked to the 200 ms parts, so read it as a trend, not a distribution).
//!
//! Also reported: response times per request kind (bucketed), the fan-out spread (per part:
//! last − first receipt over all clients, i.e. how long the server takes to hand one new part
//! to everyone), run-queue wait of the server's and the client's threads
//! (`/proc/PID/task/*/schedstat`: runnable but not running, i.e. CPU contention), the
//! client's event-loop lag (how late a 5 ms timer fires) and per-CPU busy time of the machine
//! (`/proc/stat`, to see what else ran).
//!
//! Output: one line per second on stderr (requests, parts, bytes, errors, behind, ages, server
//! and own CPU), a summary on stderr and one JSON line on stdout at the end. With
//! `--server-pid` the server's CPU time (utime + stime from `/proc/PID/stat`, CLK_TCK assumed
//! to be 100) and VmRSS are sampled at the start and end of the window (RSS baseline: before
//! the first client connects); `--publisher-pid` does the same for the publisher's CPU.
//!
//! The clients run on one current-thread tokio runtime (`--threads 1`, default: at most one
//! core) or a multi-threaded one with `--threads K`.
//!
//! ```text
//! cargo build --release -p rill-benches --bin hls-load
//! hls-load --url http://127.0.0.1:18080/live/bench/video/media.m3u8 --clients 500 \
//!          --seconds 60 --ramp 5 --warmup 3 --server-pid "$(pgrep -n rill)"
//! ```

use anyhow::{anyhow, bail, Context, Result};
use rill_benches::{json_str, num, proc_cpu_seconds, proc_rss_kib, CLK_TCK};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const READ_BUF: usize = 16 * 1024;
const MAX_HEAD: usize = 8 * 1024;
const RETRY_DELAY: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Hint,
    Reload,
}

struct Opts {
    url: String,
    clients: usize,
    seconds: f64,
    ramp: f64,
    warmup: f64,
    behind: f64,
    timeout: f64,
    threads: usize,
    mode: Mode,
    server_pid: Option<u32>,
    publisher_pid: Option<u32>,
    label: String,
}

fn usage() -> &'static str {
    "usage: hls-load --url http://H:P/live/NAME/video/media.m3u8 [--clients N=10] [--seconds T=20] \
     [--ramp S=5] [--warmup S=3] [--behind S=1.0] [--timeout S=10] [--threads K=1] \
     [--mode hint|reload] [--server-pid PID] [--publisher-pid PID] [--label TEXT]"
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        url: String::new(),
        clients: 10,
        seconds: 20.0,
        ramp: 5.0,
        warmup: 3.0,
        behind: 1.0,
        timeout: 10.0,
        threads: 1,
        mode: Mode::Hint,
        server_pid: None,
        publisher_pid: None,
        label: String::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| anyhow!("{name} needs a value\n{}", usage()));
        match a.as_str() {
            "--url" => o.url = val("--url")?,
            "--clients" => o.clients = val("--clients")?.parse().context("--clients")?,
            "--seconds" => o.seconds = val("--seconds")?.parse().context("--seconds")?,
            "--ramp" => o.ramp = val("--ramp")?.parse().context("--ramp")?,
            "--warmup" => o.warmup = val("--warmup")?.parse().context("--warmup")?,
            "--behind" => o.behind = val("--behind")?.parse().context("--behind")?,
            "--timeout" => o.timeout = val("--timeout")?.parse().context("--timeout")?,
            "--threads" => o.threads = val("--threads")?.parse().context("--threads")?,
            "--mode" => {
                o.mode = match val("--mode")?.as_str() {
                    "hint" => Mode::Hint,
                    "reload" => Mode::Reload,
                    m => bail!("--mode {m}: hint or reload"),
                }
            }
            "--server-pid" => o.server_pid = Some(val("--server-pid")?.parse().context("--server-pid")?),
            "--publisher-pid" => o.publisher_pid = Some(val("--publisher-pid")?.parse().context("--publisher-pid")?),
            "--label" => o.label = val("--label")?,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{}", usage()),
        }
    }
    if o.url.is_empty() {
        bail!("--url is required\n{}", usage());
    }
    if o.clients == 0 || o.seconds <= 0.0 || o.timeout <= 0.0 || o.threads == 0 || o.ramp < 0.0 || o.warmup < 0.0 {
        bail!("--clients, --seconds, --timeout, --threads must be > 0; --ramp, --warmup >= 0");
    }
    Ok(o)
}

/// `http://host:port/dir/media.m3u8` → (connect address, Host header, playlist path, directory
/// of the playlist with a trailing slash, for the relative part URIs).
fn parse_url(url: &str) -> Result<(String, String, String, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("only http:// URLs: {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => bail!("url has no path: {url}"),
    };
    let addr = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:80") };
    let path = path.split('?').next().unwrap_or(path).to_string();
    let dir = path[..path.rfind('/').unwrap_or(0) + 1].to_string();
    Ok((addr, hostport.to_string(), path, dir))
}

// ---------------------------------------------------------------------------------------------
// Parts and playlists

/// A part as one sortable number: msn in the high bits, part index in the low 16.
fn key(msn: u64, idx: u32) -> u64 {
    (msn << 16) | idx as u64
}

/// `"<epoch>-<msn>.<idx>.m4s"` → (epoch, msn, idx).
fn parse_part_uri(uri: &str) -> Option<(u64, u64, u32)> {
    // Without a query (the session parameter Rill carries into URIs for clients without CMCD).
    let stem = uri.split('?').next()?.strip_suffix(".m4s")?;
    let (epoch, rest) = stem.split_once('-')?;
    let (msn, idx) = rest.split_once('.')?;
    Some((epoch.parse().ok()?, msn.parse().ok()?, idx.parse().ok()?))
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let i = line.find(name)? + name.len();
    let rest = &line[i..];
    if let Some(q) = rest.strip_prefix('"') {
        return q.split('"').next();
    }
    rest.split(',').next()
}

/// What a client needs from a media playlist.
#[derive(Default)]
struct Playlist {
    epoch: u64,
    /// Part keys in playlist order.
    parts: Vec<u64>,
    hint: Option<u64>,
    ended: bool,
}

impl Playlist {
    fn parse_into(&mut self, text: &str) {
        self.parts.clear();
        self.hint = None;
        self.ended = false;
        for line in text.lines() {
            if let Some(l) = line.strip_prefix("#EXT-X-PART:") {
                if let Some((e, m, i)) = attr(l, "URI=").and_then(parse_part_uri) {
                    self.epoch = e;
                    self.parts.push(key(m, i));
                }
            } else if let Some(l) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                if let Some((e, m, i)) = attr(l, "URI=").and_then(parse_part_uri) {
                    self.epoch = e;
                    self.hint = Some(key(m, i));
                }
            } else if line.starts_with("#EXT-X-ENDLIST") {
                self.ended = true;
            }
        }
    }
}

/// `2026-11-21T11:56:27.123Z` → seconds since the Unix epoch.
fn parse_iso8601(s: &str) -> Option<f64> {
    let s = s.trim().strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (d.next()?.parse().ok()?, d.next()?.parse().ok()?, d.next()?.parse().ok()?);
    let mut t = time.split(':');
    let (hh, mm, ss): (f64, f64, f64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    // days_from_civil (H. Hinnant)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + hh * 3600.0 + mm * 60.0 + ss)
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client

struct Conn {
    addr: Arc<str>,
    host: Arc<str>,
    stream: Option<TcpStream>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    req: Vec<u8>,
}

struct Response {
    status: u16,
    body_len: u64,
}

fn find_crlfcrlf(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

impl Conn {
    fn new(addr: Arc<str>, host: Arc<str>) -> Conn {
        Conn {
            addr,
            host,
            stream: None,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            req: Vec::with_capacity(256),
        }
    }

    fn close(&mut self) {
        self.stream = None;
        self.start = 0;
        self.end = 0;
    }

    /// Reads more bytes into the buffer (compacting it first if it is full at the end).
    async fn fill(&mut self) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                bail!("buffer full");
            }
        }
        let s = self.stream.as_mut().ok_or_else(|| anyhow!("not connected"))?;
        let n = s.read(&mut self.buf[self.end..]).await.context("read")?;
        if n == 0 {
            bail!("EOF");
        }
        self.end += n;
        Ok(())
    }

    /// Consumes `n` body bytes, appending them to `keep` if given.
    async fn take(&mut self, mut n: u64, keep: &mut Option<&mut Vec<u8>>) -> Result<()> {
        while n > 0 {
            if self.start == self.end {
                self.fill().await?;
            }
            let avail = ((self.end - self.start) as u64).min(n) as usize;
            if let Some(k) = keep.as_mut() {
                k.extend_from_slice(&self.buf[self.start..self.start + avail]);
            }
            self.start += avail;
            n -= avail as u64;
        }
        Ok(())
    }

    /// A CRLF-terminated line from the buffer (for chunked framing), without the CRLF.
    async fn line(&mut self) -> Result<String> {
        loop {
            if let Some(p) = find_crlf(&self.buf[self.start..self.end]) {
                let l = String::from_utf8_lossy(&self.buf[self.start..self.start + p]).into_owned();
                self.start += p + 2;
                return Ok(l);
            }
            if self.end - self.start > MAX_HEAD {
                bail!("chunk line too long");
            }
            self.fill().await?;
        }
    }

    /// `GET path`; the body goes to `keep` (cleared first) or is only counted.
    async fn get(&mut self, path: &str, mut keep: Option<&mut Vec<u8>>) -> Result<Response> {
        if let Some(k) = keep.as_mut() {
            k.clear();
        }
        if self.stream.is_none() {
            let s = TcpStream::connect(&*self.addr).await.context("connect")?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.start = 0;
            self.end = 0;
        }
        self.req.clear();
        self.req.extend_from_slice(b"GET ");
        self.req.extend_from_slice(path.as_bytes());
        self.req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        self.req.extend_from_slice(self.host.as_bytes());
        self.req.extend_from_slice(b"\r\nUser-Agent: hls-load\r\n\r\n");
        let s = self.stream.as_mut().expect("connected");
        s.write_all(&self.req).await.context("write")?;

        let head_len = loop {
            if let Some(p) = find_crlfcrlf(&self.buf[self.start..self.end]) {
                break p + 4;
            }
            if self.end - self.start > MAX_HEAD {
                bail!("response head too long");
            }
            self.fill().await?;
        };
        let head = &self.buf[self.start..self.start + head_len];
        let head = std::str::from_utf8(head).context("head not utf-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
        let (mut length, mut chunked, mut close) = (None, false, status_line.starts_with("HTTP/1.0"));
        for l in lines {
            let Some((name, value)) = l.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<u64>().context("content-length")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        self.start += head_len;
        let mut body_len = 0u64;
        if chunked {
            loop {
                let l = self.line().await?;
                let size = u64::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16).context("chunk size")?;
                if size == 0 {
                    while !self.line().await?.is_empty() {} // trailers
                    break;
                }
                self.take(size, &mut keep).await?;
                body_len += size;
                if !self.line().await?.is_empty() {
                    bail!("bad chunk end");
                }
            }
        } else if let Some(n) = length {
            self.take(n, &mut keep).await?;
            body_len = n;
        } else {
            bail!("response without length (unsupported)");
        }
        if close {
            self.close();
        }
        Ok(Response { status, body_len })
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// Request kinds, for the response-time histograms.
const K_PL_PLAIN: usize = 0; // playlist without directives
const K_PL_BLOCK: usize = 1; // playlist with _HLS_msn/_HLS_part
const K_PART_HINT: usize = 2; // the preload-hinted part (may be held by the server)
const K_PART_LISTED: usize = 3; // a part the playlist already listed (should be immediate)
const KINDS: [&str; 4] = ["playlist", "playlist_blocking", "part_hint", "part_listed"];
/// Bucket upper bounds in ms (the last one is everything above).
const BUCKETS_MS: [u64; 20] =
    [1, 2, 5, 10, 20, 50, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000];
const NB: usize = BUCKETS_MS.len() + 1;

#[derive(Default)]
struct Hist {
    buckets: [AtomicU64; NB],
    max_us: AtomicU64,
    sum_us: AtomicU64,
}

impl Hist {
    fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
        self.max_us.store(0, Ordering::Relaxed);
        self.sum_us.store(0, Ordering::Relaxed);
    }
    fn record(&self, d: Duration) {
        let us = d.as_micros() as u64;
        let ms = us / 1000;
        let i = BUCKETS_MS.iter().position(|&b| ms < b).unwrap_or(NB - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }
    fn snapshot(&self) -> [u64; NB] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }
}

/// Percentile of a bucket histogram, as the bucket's upper bound in ms (`>10000` for the last).
fn pct_ms(b: &[u64; NB], p: f64) -> String {
    let total: u64 = b.iter().sum();
    if total == 0 {
        return "-".into();
    }
    let want = ((total as f64) * p).ceil().max(1.0) as u64;
    let mut acc = 0;
    for (i, n) in b.iter().enumerate() {
        acc += n;
        if acc >= want {
            return if i < BUCKETS_MS.len() { format!("<{}", BUCKETS_MS[i]) } else { ">10000".into() };
        }
    }
    "-".into()
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    playlists: AtomicU64,
    part_requests: AtomicU64,
    parts: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    hint_404: AtomicU64,
    resyncs: AtomicU64,
    reconnects: AtomicU64,
}

#[derive(Clone, Copy, Default)]
struct CountersSnap {
    requests: u64,
    playlists: u64,
    part_requests: u64,
    parts: u64,
    bytes: u64,
    errors: u64,
    hint_404: u64,
    resyncs: u64,
    reconnects: u64,
}

impl Counters {
    fn snap(&self) -> CountersSnap {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CountersSnap {
            requests: l(&self.requests),
            playlists: l(&self.playlists),
            part_requests: l(&self.part_requests),
            parts: l(&self.parts),
            bytes: l(&self.bytes),
            errors: l(&self.errors),
            hint_404: l(&self.hint_404),
            resyncs: l(&self.resyncs),
            reconnects: l(&self.reconnects),
        }
    }
}

impl std::ops::Sub for CountersSnap {
    type Output = CountersSnap;
    fn sub(self, o: CountersSnap) -> CountersSnap {
        CountersSnap {
            requests: self.requests - o.requests,
            playlists: self.playlists - o.playlists,
            part_requests: self.part_requests - o.part_requests,
            parts: self.parts - o.parts,
            bytes: self.bytes - o.bytes,
            errors: self.errors - o.errors,
            hint_404: self.hint_404 - o.hint_404,
            resyncs: self.resyncs - o.resyncs,
            reconnects: self.reconnects - o.reconnects,
        }
    }
}

struct Shared {
    start: Instant,
    stop: AtomicBool,
    c: Counters,
    hist: [Hist; 4],
    /// Per client: newest fetched part as `key + 1` (0 = none yet).
    newest: Vec<AtomicU64>,
    /// Per client: epoch of `newest`.
    epoch: Vec<AtomicU64>,
    /// Error label (status or failure) → count; includes errors before the window.
    errors: Mutex<BTreeMap<String, u64>>,
    probe: Mutex<Probe>,
    /// Part key → (first, last receipt by any client, µs since start; clients that got it).
    receipts: Mutex<HashMap<u64, (u64, u64, u32)>>,
}

impl Shared {
    fn error(&self, label: String) {
        self.c.errors.fetch_add(1, Ordering::Relaxed);
        *self.errors.lock().unwrap().entry(label).or_default() += 1;
    }
}

/// What the probe knows about the live edge.
#[derive(Default)]
struct Probe {
    epoch: u64,
    /// Part key → end of the part as Unix seconds (from PROGRAM-DATE-TIME).
    end_wall: HashMap<u64, f64>,
    edge: Option<u64>,
    updates: u64,
    errors: u64,
}

// ---------------------------------------------------------------------------------------------
// The client

struct Target {
    addr: Arc<str>,
    host: Arc<str>,
    playlist: String,
    dir: String,
    mode: Mode,
    timeout: Duration,
}

enum Outcome {
    Ok(Response),
    Failed(String),
}

async fn request(
    shared: &Shared,
    conn: &mut Conn,
    t: &Target,
    path: &str,
    keep: Option<&mut Vec<u8>>,
    kind: usize,
) -> Outcome {
    let t0 = Instant::now();
    shared.c.requests.fetch_add(1, Ordering::Relaxed);
    let was_connected = conn.stream.is_some();
    let r = tokio::time::timeout(t.timeout, conn.get(path, keep)).await;
    match r {
        Ok(Ok(resp)) => {
            shared.hist[kind].record(t0.elapsed());
            shared.c.bytes.fetch_add(resp.body_len, Ordering::Relaxed);
            Outcome::Ok(resp)
        }
        Ok(Err(e)) => {
            conn.close();
            let mut s = format!("{e:#}");
            s.truncate(80);
            if !was_connected && !s.starts_with("connect") {
                s = format!("after connect: {s}");
            }
            Outcome::Failed(s)
        }
        Err(_) => {
            conn.close();
            Outcome::Failed(format!("timeout ({}s)", t.timeout.as_secs_f64()))
        }
    }
}

fn part_path(t: &Target, epoch: u64, k: u64) -> String {
    format!("{}{}-{}.{}.m4s", t.dir, epoch, k >> 16, k & 0xffff)
}

async fn run_client(shared: Arc<Shared>, idx: usize, t: Arc<Target>) {
    let mut conn = Conn::new(t.addr.clone(), t.host.clone());
    let mut body: Vec<u8> = Vec::with_capacity(8192);
    let mut pl = Playlist::default();
    // Newest part fetched (key) and the epoch it belongs to.
    let mut have: Option<u64> = None;
    let mut have_epoch = 0u64;
    // Directive for the next playlist request (None: a plain reload).
    let mut directive: Option<u64> = None;
    let mut todo: Vec<u64> = Vec::new();

    'outer: while !shared.stop.load(Ordering::Relaxed) {
        // 1. The playlist.
        let path = match directive {
            Some(k) => format!("{}?_HLS_msn={}&_HLS_part={}", t.playlist, k >> 16, k & 0xffff),
            None => t.playlist.clone(),
        };
        let kind = if directive.is_some() { K_PL_BLOCK } else { K_PL_PLAIN };
        shared.c.playlists.fetch_add(1, Ordering::Relaxed);
        match request(&shared, &mut conn, &t, &path, Some(&mut body), kind).await {
            Outcome::Ok(r) if r.status == 200 => {}
            Outcome::Ok(r) => {
                shared.error(format!("playlist {}", r.status));
                directive = None;
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
            Outcome::Failed(e) => {
                shared.error(format!("playlist: {e}"));
                shared.c.reconnects.fetch_add(1, Ordering::Relaxed);
                directive = None;
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        }
        pl.parse_into(&String::from_utf8_lossy(&body));
        if pl.ended {
            shared.error("playlist ended (EXT-X-ENDLIST)".into());
            tokio::time::sleep(Duration::from_secs(1)).await;
            directive = None;
            continue;
        }
        let Some(hint) = pl.hint else {
            shared.error("playlist without preload hint".into());
            tokio::time::sleep(RETRY_DELAY).await;
            directive = None;
            continue;
        };
        if have.is_some() && pl.epoch != have_epoch {
            have = None; // the stream restarted
            shared.c.resyncs.fetch_add(1, Ordering::Relaxed);
        }

        // 2. Parts newer than the newest one we have (catch-up), then (hint mode) the hint.
        //    Reload mode starts at the live edge: the parts after the newest listed one.
        todo.clear();
        if have.is_none() && t.mode == Mode::Reload {
            have = pl.parts.last().copied();
            have_epoch = pl.epoch;
        } else if let Some(h) = have {
            let newer: Vec<u64> = pl.parts.iter().copied().filter(|&k| k > h).collect();
            // A gap: the part after ours is no longer listed (we are more than the part
            // window behind). Only detectable when ours is not listed either.
            if let Some(&first) = newer.first() {
                let ours_listed = pl.parts.contains(&h);
                let first_is_next = first == h + 1 || (first & 0xffff == 0 && first >> 16 == (h >> 16) + 1);
                if !ours_listed && !first_is_next {
                    shared.c.resyncs.fetch_add(1, Ordering::Relaxed);
                    if t.mode == Mode::Reload {
                        todo.push(*newer.last().expect("not empty"));
                    }
                } else {
                    todo.extend(newer);
                }
            }
        }
        let fetch_hint = t.mode == Mode::Hint;
        let n_listed = todo.len();
        if fetch_hint {
            todo.push(hint);
        }
        for (i, &k) in todo.iter().enumerate() {
            let is_hint = i >= n_listed;
            let path = part_path(&t, pl.epoch, k);
            shared.c.part_requests.fetch_add(1, Ordering::Relaxed);
            let kind = if is_hint { K_PART_HINT } else { K_PART_LISTED };
            match request(&shared, &mut conn, &t, &path, None, kind).await {
                Outcome::Ok(r) if r.status == 200 => {
                    shared.c.parts.fetch_add(1, Ordering::Relaxed);
                    have = Some(k);
                    have_epoch = pl.epoch;
                    shared.epoch[idx].store(pl.epoch, Ordering::Relaxed);
                    shared.newest[idx].store(k + 1, Ordering::Relaxed);
                    let now = shared.start.elapsed().as_micros() as u64;
                    let mut r = shared.receipts.lock().unwrap();
                    let e = r.entry(k).or_insert((now, now, 0));
                    e.1 = now;
                    e.2 += 1;
                }
                Outcome::Ok(r) if r.status == 404 && is_hint => {
                    // The segment ended before this part: the hint was never going to exist.
                    shared.c.hint_404.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Ok(r) => {
                    shared.error(format!("part {}", r.status));
                    if r.status == 404 {
                        have = None;
                        shared.c.resyncs.fetch_add(1, Ordering::Relaxed);
                    }
                    directive = None;
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue 'outer;
                }
                Outcome::Failed(e) => {
                    shared.error(format!("part: {e}"));
                    shared.c.reconnects.fetch_add(1, Ordering::Relaxed);
                    directive = None;
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue 'outer;
                }
            }
        }
        // 3. The next reload asks for the hinted position: in hint mode it exists already
        //    (answered at once, giving the next hint); in reload mode the server holds it.
        directive = Some(hint);
    }
}

// ---------------------------------------------------------------------------------------------
// The probe

/// Follows the playlist with blocking reloads on its own thread and records every part's
/// wall-clock end and the newest part.
fn run_probe(shared: Arc<Shared>, t: Arc<Target>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("probe runtime");
    rt.block_on(async move {
        let mut conn = Conn::new(t.addr.clone(), t.host.clone());
        let mut body = Vec::new();
        let mut directive: Option<u64> = None;
        loop {
            let path = match directive {
                Some(k) => format!("{}?_HLS_msn={}&_HLS_part={}", t.playlist, k >> 16, k & 0xffff),
                None => t.playlist.clone(),
            };
            let ok = matches!(
                tokio::time::timeout(t.timeout, conn.get(&path, Some(&mut body))).await,
                Ok(Ok(Response { status: 200, .. }))
            );
            if !ok {
                conn.close();
                shared.probe.lock().unwrap().errors += 1;
                directive = None;
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
            let text = String::from_utf8_lossy(&body);
            let mut seg_start: Option<f64> = None;
            let mut entries: Vec<(u64, f64)> = Vec::new();
            let (mut epoch, mut hint, mut last) = (0u64, None, None);
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                    seg_start = parse_iso8601(v);
                } else if let Some(l) = line.strip_prefix("#EXT-X-PART:") {
                    let dur: f64 = attr(l, "DURATION=").and_then(|d| d.parse().ok()).unwrap_or(0.0);
                    if let (Some((e, m, i)), Some(s)) = (attr(l, "URI=").and_then(parse_part_uri), seg_start.as_mut()) {
                        *s += dur;
                        epoch = e;
                        entries.push((key(m, i), *s));
                        last = Some(key(m, i));
                    }
                } else if let Some(l) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                    hint = attr(l, "URI=").and_then(parse_part_uri).map(|(_, m, i)| key(m, i));
                }
            }
            {
                let mut p = shared.probe.lock().unwrap();
                if p.epoch != epoch {
                    p.end_wall.clear();
                    p.epoch = epoch;
                }
                for (k, end) in entries {
                    p.end_wall.entry(k).or_insert(end);
                }
                if last.is_some() {
                    p.edge = last;
                }
                p.updates += 1;
            }
            directive = hint;
            if hint.is_none() {
                // Ended (or no parts yet): poll, do not spin.
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Sampling and reporting

/// Busy seconds (everything but idle and iowait) of `cpu` (all CPUs) and each `cpuN` line of
/// `/proc/stat`, in that order.
fn machine_busy() -> Vec<(String, f64)> {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return Vec::new() };
    stat.lines()
        .filter(|l| l.starts_with("cpu"))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let v: Vec<f64> = f.filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal (guest is already in user)
            let busy = v.first()?
                + v.get(1)?
                + v.get(2)?
                + v.get(5).unwrap_or(&0.0)
                + v.get(6).unwrap_or(&0.0)
                + v.get(7).unwrap_or(&0.0);
            Some((name, busy / CLK_TCK))
        })
        .collect()
}

/// Time all threads of a process spent runnable but waiting for a CPU (run-queue wait,
/// field 2 of `/proc/PID/task/TID/schedstat`, ns), in seconds. Threads that exited are missed.
fn proc_runqueue_wait_seconds(pid: &str) -> Option<f64> {
    let mut total = 0u64;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) else { continue };
        total += s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    Some(total as f64 / 1e9)
}

/// Lag of every client at this instant.
struct LagSample {
    /// Clients with at least one part.
    playing: usize,
    /// Clients whose newest part is more than `--behind` seconds older than the edge part.
    behind: Vec<usize>,
    /// Seconds behind the probe's edge, per playing client (sorted).
    lags: Vec<f64>,
    /// Wall clock now − end of the newest part, per playing client (sorted).
    ages: Vec<f64>,
}

fn sample_lag(shared: &Shared, behind_s: f64) -> LagSample {
    let p = shared.probe.lock().unwrap();
    let now = unix_now();
    let edge_end = p.edge.and_then(|e| p.end_wall.get(&e)).copied();
    let mut s = LagSample { playing: 0, behind: Vec::new(), lags: Vec::new(), ages: Vec::new() };
    for (i, n) in shared.newest.iter().enumerate() {
        let n = n.load(Ordering::Relaxed);
        if n == 0 {
            continue;
        }
        s.playing += 1;
        let k = n - 1;
        let same_epoch = shared.epoch[i].load(Ordering::Relaxed) == p.epoch;
        let end = if same_epoch { p.end_wall.get(&k).copied() } else { None };
        let lag = match (p.edge, edge_end, end) {
            (Some(_), Some(e), Some(c)) => (e - c).max(0.0),
            // Newer than the probe's edge: the probe has not seen this part yet.
            (Some(edge), _, None) if same_epoch && k > edge => 0.0,
            // Not a part the probe saw (from another epoch).
            (Some(_), Some(_), None) => f64::INFINITY,
            _ => 0.0,
        };
        // Lags are sums of part durations: allow for rounding of the 5-decimal durations.
        if lag > behind_s + 0.002 {
            s.behind.push(i);
        }
        s.lags.push(lag);
        if let Some(c) = end {
            s.ages.push(now - c); // unknown for parts the probe has not seen yet
        }
    }
    s.lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s.ages.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s
}

fn q(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    Some(v[((v.len() - 1) as f64 * p).round() as usize])
}

fn fmt_s(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v:.2}"),
        Some(_) => "inf".into(),
        None => "-".into(),
    }
}

fn main() -> Result<()> {
    let opts = parse_opts()?;
    let rt = if opts.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(opts.threads).enable_all().build()?
    };
    rt.block_on(run(opts))
}

async fn run(opts: Opts) -> Result<()> {
    let (addr, host, playlist, dir) = parse_url(&opts.url)?;
    let target = Arc::new(Target {
        addr: addr.into(),
        host: host.into(),
        playlist,
        dir,
        mode: opts.mode,
        timeout: Duration::from_secs_f64(opts.timeout),
    });
    let spid = opts.server_pid.map(|p| p.to_string());
    let ppid = opts.publisher_pid.map(|p| p.to_string());
    let server_rss = || spid.as_deref().and_then(proc_rss_kib);
    let server_cpu = || spid.as_deref().and_then(proc_cpu_seconds);
    let publisher_cpu = || ppid.as_deref().and_then(proc_cpu_seconds);
    let self_cpu = || proc_cpu_seconds("self");
    let server_wait = || spid.as_deref().and_then(proc_runqueue_wait_seconds);
    let self_wait = || proc_runqueue_wait_seconds("self");
    let rss_baseline = server_rss();

    let n = opts.clients;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        stop: AtomicBool::new(false),
        c: Counters::default(),
        hist: Default::default(),
        newest: (0..n).map(|_| AtomicU64::new(0)).collect(),
        epoch: (0..n).map(|_| AtomicU64::new(0)).collect(),
        errors: Mutex::new(BTreeMap::new()),
        probe: Mutex::new(Probe::default()),
        receipts: Mutex::new(HashMap::new()),
    });

    // The probe first, so the edge is known before the clients start.
    {
        let (s, t) = (shared.clone(), target.clone());
        std::thread::Builder::new().name("probe".into()).spawn(move || run_probe(s, t))?;
    }
    let probe_deadline = Instant::now() + Duration::from_secs(10);
    while shared.probe.lock().unwrap().edge.is_none() {
        if Instant::now() > probe_deadline {
            bail!("the probe got no playlist with parts from {} within 10 s", opts.url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Clients, evenly spread over the ramp (spawned by one task so the reporter runs meanwhile).
    {
        let (shared, target, ramp) = (shared.clone(), target.clone(), opts.ramp);
        tokio::spawn(async move {
            let t0 = tokio::time::Instant::now();
            for i in 0..n {
                let at = t0 + Duration::from_secs_f64(ramp * i as f64 / n as f64);
                tokio::time::sleep_until(at).await;
                tokio::spawn(run_client(shared.clone(), i, target.clone()));
            }
        });
    }

    let window_start = opts.ramp + opts.warmup;
    let window_end = window_start + opts.seconds;
    eprintln!(
        "[hls-load] {} clients ({} mode) on {}: ramp {:.1}s, warmup {:.1}s, window {:.1}s, behind > {:.2}s",
        n,
        if opts.mode == Mode::Hint { "hint" } else { "reload" },
        opts.url,
        opts.ramp,
        opts.warmup,
        opts.seconds,
        opts.behind
    );

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut prev = shared.c.snap();
    let mut prev_t = shared.start.elapsed().as_secs_f64();
    let (mut prev_scpu, mut prev_ccpu) = (server_cpu(), self_cpu());
    let mut prev_machine = machine_busy();
    // Window bookkeeping.
    let mut in_window = false;
    let mut w0 = CountersSnap::default();
    let mut w0_hist: Vec<[u64; NB]> = Vec::new();
    let (mut w0_t, mut w0_scpu, mut w0_ccpu, mut w0_pcpu) = (0.0, None, None, None);
    let mut w0_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut w0_machine: Vec<(String, f64)> = Vec::new();
    let (mut w0_swait, mut w0_cwait) = (None, None);
    // Event-loop lag of the client runtime: how late a 5 ms sleep wakes up. A client that
    // cannot keep up with its own work shows it here.
    let loop_lag = Arc::new(Hist::default());
    {
        let (loop_lag, shared) = (loop_lag.clone(), shared.clone());
        tokio::spawn(async move {
            while !shared.stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                tokio::time::sleep(Duration::from_millis(5)).await;
                loop_lag.record(t0.elapsed().saturating_sub(Duration::from_millis(5)));
            }
        });
    }
    let mut rss_peak: Option<u64> = None;
    let mut ever_behind = vec![false; n];
    let mut behind_max = 0usize;
    let mut behind_sum = 0usize;
    let mut samples = 0usize;
    let mut lag_max: f64 = 0.0;

    loop {
        tick.tick().await;
        let t = shared.start.elapsed().as_secs_f64();
        if !in_window && t >= window_start {
            in_window = true;
            w0 = shared.c.snap();
            w0_hist = shared.hist.iter().map(|h| h.snapshot()).collect();
            w0_t = t;
            w0_scpu = server_cpu();
            w0_ccpu = self_cpu();
            w0_pcpu = publisher_cpu();
            w0_machine = machine_busy();
            w0_swait = server_wait();
            w0_cwait = self_wait();
            loop_lag.reset();
            w0_errors = shared.errors.lock().unwrap().clone();
            eprintln!("[hls-load] measurement window starts");
        }
        let now = shared.c.snap();
        let d = now - prev;
        let dt = (t - prev_t).max(1e-3);
        let (scpu, ccpu) = (server_cpu(), self_cpu());
        let pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.0}%", (b - a) / dt * 100.0),
            _ => "-".into(),
        };
        let machine_now = machine_busy();
        let cores: Vec<String> = machine_now
            .iter()
            .filter(|(n, _)| n != "cpu")
            .filter_map(|(n, b)| {
                let b0 = prev_machine.iter().find(|(m, _)| m == n)?.1;
                Some(format!("{n}={:.0}%", (b - b0) / dt * 100.0))
            })
            .collect();
        prev_machine = machine_now;
        let lag = sample_lag(&shared, opts.behind);
        if in_window {
            for &i in &lag.behind {
                ever_behind[i] = true;
            }
            behind_max = behind_max.max(lag.behind.len());
            behind_sum += lag.behind.len();
            samples += 1;
            lag_max = lag_max.max(q(&lag.lags, 1.0).unwrap_or(0.0));
            if let Some(r) = server_rss() {
                rss_peak = Some(rss_peak.map_or(r, |p| p.max(r)));
            }
        }
        eprintln!(
            "t={:5.1} {} playing={}/{} req/s={:.0} parts/s={:.0} Mbit/s={:.1} err={}(+{}) hint404=+{} resync=+{} \
             behind={} lag p50/p99/max={}/{}/{}s age p50/p99/max={}/{}/{}s srv_cpu={} cli_cpu={} busy {}",
            t,
            if in_window { "W" } else { "-" },
            lag.playing,
            n,
            d.requests as f64 / dt,
            d.parts as f64 / dt,
            d.bytes as f64 * 8.0 / 1e6 / dt,
            now.errors,
            d.errors,
            d.hint_404,
            d.resyncs,
            lag.behind.len(),
            fmt_s(q(&lag.lags, 0.5)),
            fmt_s(q(&lag.lags, 0.99)),
            fmt_s(q(&lag.lags, 1.0)),
            fmt_s(q(&lag.ages, 0.5)),
            fmt_s(q(&lag.ages, 0.99)),
            fmt_s(q(&lag.ages, 1.0)),
            pct(prev_scpu, scpu),
            pct(prev_ccpu, ccpu),
            cores.join(" "),
        );
        prev = now;
        prev_t = t;
        prev_scpu = scpu;
        prev_ccpu = ccpu;
        if t >= window_end {
            break;
        }
    }

    // End of the window.
    shared.stop.store(true, Ordering::Relaxed);
    let t1 = shared.start.elapsed().as_secs_f64();
    let (scpu1, ccpu1, pcpu1, rss_end) = (server_cpu(), self_cpu(), publisher_cpu(), server_rss());
    let server_wait_s = match (w0_swait, server_wait()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let client_wait_s = match (w0_cwait, self_wait()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let lag_hist = loop_lag.snapshot();
    let loop_lag_max_ms = loop_lag.max_us.load(Ordering::Relaxed) as f64 / 1000.0;
    let machine: Vec<(String, f64)> = machine_busy()
        .into_iter()
        .filter_map(|(name, b)| Some((name.clone(), b - w0_machine.iter().find(|(n, _)| *n == name)?.1)))
        .collect();
    let machine_total = machine.iter().find(|(n, _)| n == "cpu").map(|(_, b)| *b);
    let w = shared.c.snap() - w0;
    let secs = t1 - w0_t;
    let diff = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let server_cpu_s = diff(w0_scpu, scpu1);
    let client_cpu_s = diff(w0_ccpu, ccpu1);
    let publisher_cpu_s = diff(w0_pcpu, pcpu1);
    let lag = sample_lag(&shared, opts.behind);
    let errors_all = shared.errors.lock().unwrap().clone();
    let errors_window: BTreeMap<String, u64> = errors_all
        .iter()
        .map(|(k, v)| (k.clone(), v - w0_errors.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    let hists: Vec<[u64; NB]> = shared
        .hist
        .iter()
        .zip(&w0_hist)
        .map(|(h, b0)| {
            let s = h.snapshot();
            std::array::from_fn(|i| s[i] - b0[i])
        })
        .collect();
    let probe = shared.probe.lock().unwrap();
    let (probe_updates, probe_errors) = (probe.updates, probe.errors);
    drop(probe);
    let nf = n as f64;
    let rss_per_client = match (rss_end, rss_baseline) {
        (Some(r), Some(b)) => Some((r as f64 - b as f64) / nf),
        _ => None,
    };
    let ever = ever_behind.iter().filter(|b| **b).count();
    // Fan-out spread: for every part first received inside the window (and not in its last
    // second, so late receipts are in), last receipt − first receipt over all clients.
    let (w0_us, w1_us) = ((w0_t * 1e6) as u64, ((t1 - 1.0) * 1e6) as u64);
    let mut spreads: Vec<f64> = Vec::new();
    let mut receivers: Vec<f64> = Vec::new();
    for &(first, last, count) in shared.receipts.lock().unwrap().values() {
        if first >= w0_us && first < w1_us {
            spreads.push((last - first) as f64 / 1000.0);
            receivers.push(count as f64);
        }
    }
    spreads.sort_by(|a, b| a.partial_cmp(b).unwrap());
    receivers.sort_by(|a, b| a.partial_cmp(b).unwrap());

    let errs_json =
        |m: &BTreeMap<String, u64>| m.iter().map(|(k, v)| format!("{}:{v}", json_str(k))).collect::<Vec<_>>().join(",");
    let hist_json: Vec<String> = KINDS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let total: u64 = hists[i].iter().sum();
            format!(
                "{}:{{\"count\":{},\"p50_ms\":{},\"p90_ms\":{},\"p99_ms\":{},\"p999_ms\":{},\"max_ms_run\":{:.1}}}",
                json_str(name),
                total,
                json_str(&pct_ms(&hists[i], 0.5)),
                json_str(&pct_ms(&hists[i], 0.9)),
                json_str(&pct_ms(&hists[i], 0.99)),
                json_str(&pct_ms(&hists[i], 0.999)),
                shared.hist[i].max_us.load(Ordering::Relaxed) as f64 / 1000.0
            )
        })
        .collect();

    eprintln!("[hls-load] window {secs:.1}s, {n} clients:");
    eprintln!(
        "  requests {} ({:.0}/s; playlists {}, parts requested {}), parts fetched {} ({:.2}/s per client), bytes {} ({:.1} Mbit/s, {:.0} kbit/s per client)",
        w.requests,
        w.requests as f64 / secs,
        w.playlists,
        w.part_requests,
        w.parts,
        w.parts as f64 / secs / nf,
        w.bytes,
        w.bytes as f64 * 8.0 / 1e6 / secs,
        w.bytes as f64 * 8.0 / 1e3 / secs / nf
    );
    eprintln!(
        "  errors in window {} {:?}; hint 404s {}; resyncs {}; reconnects {}",
        w.errors, errors_window, w.hint_404, w.resyncs, w.reconnects
    );
    eprintln!(
        "  behind (> {:.2}s): at end {}, max in a 1 s sample {}, mean {:.1}, clients ever behind {}; lag max {:.2}s; at end lag p50/p99/max {}/{}/{} s, age p50/p99/max {}/{}/{} s",
        opts.behind,
        lag.behind.len(),
        behind_max,
        if samples > 0 { behind_sum as f64 / samples as f64 } else { 0.0 },
        ever,
        lag_max,
        fmt_s(q(&lag.lags, 0.5)),
        fmt_s(q(&lag.lags, 0.99)),
        fmt_s(q(&lag.lags, 1.0)),
        fmt_s(q(&lag.ages, 0.5)),
        fmt_s(q(&lag.ages, 0.99)),
        fmt_s(q(&lag.ages, 1.0)),
    );
    eprintln!(
        "  fan-out spread (last − first client receipt of a part, {} parts, min receivers {}): p50 {} p90 {} max {} ms",
        spreads.len(),
        num(q(&receivers, 0.0), 0),
        num(q(&spreads, 0.5), 1),
        num(q(&spreads, 0.9), 1),
        num(q(&spreads, 1.0), 1)
    );
    for (i, name) in KINDS.iter().enumerate() {
        eprintln!(
            "  {:<18} n={:<8} p50 {:>7} p90 {:>7} p99 {:>7} p99.9 {:>7} ms, max (whole run) {:.1} ms",
            name,
            hists[i].iter().sum::<u64>(),
            pct_ms(&hists[i], 0.5),
            pct_ms(&hists[i], 0.9),
            pct_ms(&hists[i], 0.99),
            pct_ms(&hists[i], 0.999),
            shared.hist[i].max_us.load(Ordering::Relaxed) as f64 / 1000.0
        );
    }
    eprintln!(
        "  server cpu {} s ({} per client-second), rss baseline {} KiB → end {} KiB (peak {}), {} KiB per client; client cpu {} s; publisher cpu {} s; probe updates {} errors {}",
        num(server_cpu_s, 2),
        num(server_cpu_s.map(|c| c / (nf * secs)), 7),
        rss_baseline.map_or("-".into(), |v| v.to_string()),
        rss_end.map_or("-".into(), |v| v.to_string()),
        rss_peak.map_or("-".into(), |v| v.to_string()),
        num(rss_per_client, 1),
        num(client_cpu_s, 2),
        num(publisher_cpu_s, 2),
        probe_updates,
        probe_errors
    );

    let others = match (machine_total, server_cpu_s, client_cpu_s) {
        (Some(m), Some(s), Some(c)) => Some(m - s - c - publisher_cpu_s.unwrap_or(0.0)),
        _ => None,
    };
    eprintln!(
        "  machine busy {} CPU-s in {:.1}s ({}); other processes (not rill, hls-load, publisher) {} CPU-s",
        num(machine_total, 1),
        secs,
        machine
            .iter()
            .filter(|(n, _)| n != "cpu")
            .map(|(n, b)| format!("{n} {:.0}%", b / secs * 100.0))
            .collect::<Vec<_>>()
            .join(", "),
        num(others, 1)
    );
    eprintln!(
        "  run-queue wait (runnable, no CPU): server {} s, client {} s; client event-loop lag p50 {} p99 {} max {:.1} ms",
        num(server_wait_s, 2),
        num(client_wait_s, 2),
        pct_ms(&lag_hist, 0.5),
        pct_ms(&lag_hist, 0.99),
        loop_lag_max_ms
    );
    let machine_json = machine.iter().map(|(n, b)| format!("{}:{:.2}", json_str(n), b)).collect::<Vec<_>>().join(",");
    let opt_u = |x: Option<u64>| x.map_or("null".to_string(), |v| v.to_string());
    println!(
        "{{\"label\":{},\"url\":{},\"mode\":{},\"clients\":{},\"seconds\":{:.2},\"behind_threshold_s\":{},\
         \"requests\":{},\"requests_per_s\":{:.1},\"playlist_requests\":{},\"part_requests\":{},\"parts\":{},\"bytes\":{},\
         \"mbit_per_s\":{:.2},\"kbit_per_s_per_client\":{:.1},\"errors\":{},\"errors_by_kind\":{{{}}},\
         \"errors_whole_run\":{{{}}},\"hint_404\":{},\"resyncs\":{},\"reconnects\":{},\
         \"playing_at_end\":{},\"behind_at_end\":{},\"behind_max\":{},\"behind_mean\":{:.2},\"ever_behind\":{},\
         \"lag_max_s\":{},\"lag_p50_s_end\":{},\"lag_p99_s_end\":{},\"age_p50_s_end\":{},\"age_p99_s_end\":{},\"age_max_s_end\":{},\
         \"response_ms\":{{{}}},\"spread_parts\":{},\"spread_min_receivers\":{},\"spread_p50_ms\":{},\"spread_p90_ms\":{},\"spread_max_ms\":{},\"server_cpu_seconds\":{},\"server_cpu_per_client_second\":{},\
         \"server_rss_baseline_kib\":{},\"server_rss_kib\":{},\"server_rss_peak_kib\":{},\"rss_per_client_kib\":{},\
         \"client_cpu_seconds\":{},\"publisher_cpu_seconds\":{},\"machine_busy_seconds\":{{{}}},\"other_cpu_seconds\":{},\"server_runqueue_wait_s\":{},\"client_runqueue_wait_s\":{},\
         \"client_loop_lag_p99_ms\":{},\"client_loop_lag_max_ms\":{:.1},\
         \"probe_updates\":{},\"probe_errors\":{}}}",
        json_str(&opts.label),
        json_str(&opts.url),
        json_str(if opts.mode == Mode::Hint { "hint" } else { "reload" }),
        n,
        secs,
        opts.behind,
        w.requests,
        w.requests as f64 / secs,
        w.playlists,
        w.part_requests,
        w.parts,
        w.bytes,
        w.bytes as f64 * 8.0 / 1e6 / secs,
        w.bytes as f64 * 8.0 / 1e3 / secs / nf,
        w.errors,
        errs_json(&errors_window),
        errs_json(&errors_all),
        w.hint_404,
        w.resyncs,
        w.reconnects,
        lag.playing,
        lag.behind.len(),
        behind_max,
        if samples > 0 { behind_sum as f64 / samples as f64 } else { 0.0 },
        ever,
        num(Some(lag_max), 3),
        num(q(&lag.lags, 0.5), 3),
        num(q(&lag.lags, 0.99), 3),
        num(q(&lag.ages, 0.5), 3),
        num(q(&lag.ages, 0.99), 3),
        num(q(&lag.ages, 1.0), 3),
        hist_json.join(","),
        spreads.len(),
        num(q(&receivers, 0.0), 0),
        num(q(&spreads, 0.5), 1),
        num(q(&spreads, 0.9), 1),
        num(q(&spreads, 1.0), 1),
        num(server_cpu_s, 2),
        num(server_cpu_s.map(|c| c / (nf * secs)), 7),
        opt_u(rss_baseline),
        opt_u(rss_end),
        opt_u(rss_peak),
        num(rss_per_client, 1),
        num(client_cpu_s, 2),
        num(publisher_cpu_s, 2),
        machine_json,
        num(others, 2),
        num(server_wait_s, 2),
        num(client_wait_s, 2),
        json_str(&pct_ms(&lag_hist, 0.99)),
        loop_lag_max_ms,
        probe_updates,
        probe_errors
    );
    // Client tasks and the probe are still running; exit without waiting for them.
    std::process::exit(0);
}
