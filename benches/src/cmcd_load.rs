//! `cmcd-load`: sends batches of CMCD v2 event-mode reports to Rill's collector
//! (`POST /analytics/cmcd`) at a fixed rate and reports what was accepted, how fast, and what
//! the server wrote to its database.
//!
//! Reports: every request carries `--lines` event lines (default 100) of `--per-group`
//! sessions (default 25, i.e. 4 lines each), as a relay batching many players' reports would
//! send them. The `--sessions` (default 50 000) session ids are split into fixed groups; each
//! request takes the next group round-robin and carries its `rill_viewer` cookie (one visitor
//! per group). A session's first lines are `e=ps` with `sta=s` then `sta=p` (with `msd`),
//! later ones `e=t` (time interval) with `sta=p` (every 40th `sta=r`, a rebuffer, followed by
//! `e=ps,sta=p`), all with `ts` (1 s apart, ending now), `bl`, `br`, `pt`, `ltc`, `ot=v`,
//! `sf=h`, `sid`, `cid="live/bench-N"` (`--streams` streams) and `v=2`: about 160 bytes a
//! line.
//!
//! Pacing (open loop): `--rate` events per second are spread over `--conns` keep-alive
//! connections, each sending its requests on a fixed schedule (no more than one in flight per
//! connection). The accept latency of a request is measured from its *scheduled* send time to
//! the end of the response, so a server that falls behind shows in the latency rather than
//! in a lower send rate (no coordinated omission). `--rate 0` is a closed loop: every
//! connection sends its next request as soon as the previous one is answered.
//!
//! Once a second it scrapes `/metrics` (`rill_analytics_reports_total`,
//! `rill_analytics_events_written_total`, `rill_analytics_batches_total`,
//! `rill_analytics_queue`, `rill_analytics_refused_busy_total`) and, with `--server-pid`,
//! reads the server's CPU time, and prints a line per second on stderr. After the window it
//! waits (up to `--drain` s) until the server has written every report it accepted, then
//! prints a summary on stderr and one JSON line on stdout.
//!
//! ```text
//! cargo build --release -p rill-benches --bin cmcd-load
//! cmcd-load --addr 127.0.0.1:18080 --rate 50000 --seconds 60 --server-pid "$(pgrep -n rill)"
//! ```

use anyhow::{anyhow, bail, Context, Result};
use rill_benches::{num, proc_cpu_seconds};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Opts {
    addr: String,
    rate: f64,
    seconds: u64,
    warmup: u64,
    lines: usize,
    per_group: usize,
    sessions: usize,
    streams: usize,
    conns: usize,
    threads: usize,
    server_pid: Option<String>,
    drain: u64,
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        addr: "127.0.0.1:18080".into(),
        rate: 50_000.0,
        seconds: 60,
        warmup: 5,
        lines: 100,
        per_group: 25,
        sessions: 50_000,
        streams: 10,
        conns: 32,
        threads: 1,
        server_pid: None,
        drain: 60,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--addr" => o.addr = v()?,
            "--rate" => o.rate = v()?.parse()?,
            "--seconds" => o.seconds = v()?.parse()?,
            "--warmup" => o.warmup = v()?.parse()?,
            "--lines" => o.lines = v()?.parse()?,
            "--per-group" => o.per_group = v()?.parse()?,
            "--sessions" => o.sessions = v()?.parse()?,
            "--streams" => o.streams = v()?.parse()?,
            "--conns" => o.conns = v()?.parse()?,
            "--threads" => o.threads = v()?.parse()?,
            "--server-pid" => o.server_pid = Some(v()?),
            "--drain" => o.drain = v()?.parse()?,
            "-h" | "--help" => {
                eprintln!(
                    "cmcd-load --addr HOST:PORT [--rate EVENTS_PER_S (0: closed loop)] [--seconds N] [--warmup N] \
                     [--lines N] [--per-group N] [--sessions N] [--streams N] [--conns N] [--threads N] \
                     [--server-pid PID] [--drain S]"
                );
                std::process::exit(0);
            }
            _ => bail!("unknown option {a}"),
        }
    }
    if o.lines == 0 || o.per_group == 0 || o.lines < o.per_group || o.sessions < o.per_group || o.conns == 0 {
        bail!("need lines >= per-group >= 1, sessions >= per-group, conns >= 1");
    }
    Ok(o)
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

// ---------------------------------------------------------------------------------------------
// Report lines

/// The session groups and what each session has reported so far.
struct Groups {
    run: u64,
    per_group: usize,
    lines_per_session: usize,
    streams: usize,
    count: usize,
    next: AtomicU64,
    /// Reports sent per session (first ones start the session).
    sent: Vec<AtomicU64>,
    started_ms: i64,
}

impl Groups {
    fn new(o: &Opts) -> Groups {
        let count = o.sessions / o.per_group;
        Groups {
            run: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            per_group: o.per_group,
            lines_per_session: o.lines / o.per_group,
            streams: o.streams.max(1),
            count,
            next: AtomicU64::new(0),
            sent: (0..count * o.per_group).map(|_| AtomicU64::new(0)).collect(),
            started_ms: unix_ms(),
        }
    }

    /// The next group's body and visitor cookie.
    fn body(&self, out: &mut Vec<u8>) -> String {
        use std::io::Write;
        out.clear();
        let g = self.next.fetch_add(1, Relaxed) as usize % self.count;
        let now = unix_ms();
        for s in g * self.per_group..(g + 1) * self.per_group {
            let n0 = self.sent[s].fetch_add(self.lines_per_session as u64, Relaxed);
            // Sessions started at staggered times before the run: playheads differ.
            let start = self.started_ms - (s as i64 % 600) * 1000;
            let stream = s % self.streams;
            for k in 0..self.lines_per_session {
                let n = n0 + k as u64;
                let ts = now - (self.lines_per_session - 1 - k) as i64 * 1000;
                let pt = (ts - start).max(0);
                let (event, state, extra) = match n {
                    0 => ("ps", "s", String::new()),
                    1 => ("ps", "p", format!(",msd={}", 300 + s % 900)),
                    n if n % 40 == 0 => ("ps", "r", String::new()),
                    n if n % 40 == 1 => ("ps", "p", String::new()),
                    _ => ("t", "p", String::new()),
                };
                let bl = 8_000 + (n % 7) * 1_500;
                let br = [800, 1_600, 3_200, 5_000][s % 4];
                let ltc = 1_500 + (s % 13) as u64 * 100;
                let _ = writeln!(
                    out,
                    "bl=({bl}),br=({br}),cid=\"live/bench-{stream}\",e={event},ltc={ltc}{extra},ot=v,pt={pt},\
                     sf=h,sid=\"b{}-{s:06}-6e2fb550c457\",sta={state},ts={ts},v=2",
                    self.run
                );
            }
        }
        format!("rill_viewer=v{}g{g}", self.run)
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 keep-alive client

struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    req: Vec<u8>,
}

fn find(b: &[u8], pat: &[u8]) -> Option<usize> {
    b.windows(pat.len()).position(|w| w == pat)
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn { addr: addr.to_owned(), stream: None, buf: Vec::with_capacity(4096), req: Vec::with_capacity(32 << 10) }
    }

    /// One request; the status and body of the answer.
    async fn request(&mut self, method: &str, path: &str, cookie: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        let r = self.request_once(method, path, cookie, body).await;
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    async fn request_once(&mut self, method: &str, path: &str, cookie: &str, body: &[u8]) -> Result<(u16, Vec<u8>)> {
        use std::io::Write;
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await.context("connect")?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        self.req.clear();
        write!(self.req, "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cmcd-load\r\n", self.addr)?;
        if !cookie.is_empty() {
            write!(self.req, "Cookie: {cookie}\r\n")?;
        }
        if method == "POST" {
            write!(self.req, "Content-Type: application/cmcd\r\nContent-Length: {}\r\n", body.len())?;
        }
        self.req.extend_from_slice(b"\r\n");
        self.req.extend_from_slice(body);
        let s = self.stream.as_mut().expect("connected");
        s.write_all(&self.req).await.context("write")?;
        let mut chunk = [0u8; 16 << 10];
        let head_len = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            let n = s.read(&mut chunk).await.context("read")?;
            if n == 0 {
                bail!("EOF");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..head_len]).context("head")?.to_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
        let mut length = 0usize;
        for l in lines {
            if let Some((name, value)) = l.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().context("content-length")?;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("chunked answers are not supported");
                }
            }
        }
        while self.buf.len() < head_len + length {
            let n = s.read(&mut chunk).await.context("read")?;
            if n == 0 {
                bail!("EOF in body");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf[head_len..head_len + length].to_vec();
        self.buf.drain(..head_len + length);
        Ok((status, body))
    }
}

// ---------------------------------------------------------------------------------------------
// Counting

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    accepted_requests: AtomicU64,
    accepted_events: AtomicU64,
    refused_429: AtomicU64,
    other_status: AtomicU64,
    errors: AtomicU64,
}

struct Shared {
    opts: Opts,
    groups: Groups,
    counters: Counters,
    /// Accept latencies (µs) of requests scheduled in the window.
    latencies: Mutex<Vec<u32>>,
    /// Per-second latencies, for the progress line.
    second: Mutex<Vec<u32>>,
    window: (Instant, Instant),
    errors_seen: Mutex<Vec<String>>,
}

async fn worker(shared: Arc<Shared>, i: usize, start: Instant, end: Instant) {
    let o = &shared.opts;
    let interval =
        if o.rate > 0.0 { Some(Duration::from_secs_f64(o.conns as f64 * o.lines as f64 / o.rate)) } else { None };
    let mut conn = Conn::new(&o.addr);
    let mut body = Vec::with_capacity(o.lines * 200);
    let mut k = 0u32;
    loop {
        let scheduled = match interval {
            Some(iv) => start + iv.mul_f64(k as f64 + i as f64 / o.conns as f64),
            None => Instant::now(),
        };
        k += 1;
        if scheduled >= end {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        let cookie = shared.groups.body(&mut body);
        let lines = shared.groups.per_group * shared.groups.lines_per_session;
        let result = conn.request("POST", "/analytics/cmcd", &cookie, &body).await;
        let done = Instant::now();
        let c = &shared.counters;
        c.requests.fetch_add(1, Relaxed);
        match result {
            Ok((204, _)) => {
                c.accepted_requests.fetch_add(1, Relaxed);
                c.accepted_events.fetch_add(lines as u64, Relaxed);
            }
            Ok((429, _)) => {
                c.refused_429.fetch_add(1, Relaxed);
            }
            Ok((status, body)) => {
                c.other_status.fetch_add(1, Relaxed);
                let mut seen = shared.errors_seen.lock().unwrap();
                if seen.len() < 5 {
                    seen.push(format!("{status}: {}", String::from_utf8_lossy(&body)));
                }
            }
            Err(e) => {
                c.errors.fetch_add(1, Relaxed);
                {
                    let mut seen = shared.errors_seen.lock().unwrap();
                    if seen.len() < 5 {
                        seen.push(format!("{e:#}"));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let us = done.saturating_duration_since(scheduled).as_micros().min(u32::MAX as u128) as u32;
        shared.second.lock().unwrap().push(us);
        if scheduled >= shared.window.0 && scheduled < shared.window.1 {
            shared.latencies.lock().unwrap().push(us);
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[i] as f64 / 1000.0)
}

/// The analytics figures of the server's `/metrics`.
#[derive(Clone, Copy, Default, Debug)]
struct ServerFigures {
    reports: f64,
    written: f64,
    batches: f64,
    queue: f64,
    busy: f64,
    write_errors: f64,
}

async fn scrape(conn: &mut Conn) -> Result<ServerFigures> {
    let (status, body) = conn.request("GET", "/metrics", "", b"").await?;
    if status != 200 {
        bail!("/metrics: {status}");
    }
    let text = String::from_utf8_lossy(&body);
    let mut f = ServerFigures::default();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(' ') else { continue };
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        match name {
            "rill_analytics_reports_total" => f.reports = v,
            "rill_analytics_events_written_total" => f.written = v,
            "rill_analytics_batches_total" => f.batches = v,
            "rill_analytics_queue" => f.queue = v,
            "rill_analytics_refused_busy_total" => f.busy = v,
            "rill_analytics_write_errors_total" => f.write_errors = v,
            _ => {}
        }
    }
    Ok(f)
}

fn main() -> Result<()> {
    let opts = parse_opts()?;
    let runtime = if opts.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(opts.threads).enable_all().build()?
    };
    runtime.block_on(run(opts))
}

async fn run(opts: Opts) -> Result<()> {
    let mut metrics = Conn::new(&opts.addr);
    let before = scrape(&mut metrics).await.context("scraping /metrics before the run")?;
    let start = Instant::now() + Duration::from_millis(100);
    let window = (start + Duration::from_secs(opts.warmup), start + Duration::from_secs(opts.warmup + opts.seconds));
    let shared = Arc::new(Shared {
        groups: Groups::new(&opts),
        opts,
        counters: Counters::default(),
        latencies: Mutex::new(Vec::new()),
        second: Mutex::new(Vec::new()),
        window,
        errors_seen: Mutex::new(Vec::new()),
    });
    let o = &shared.opts;
    eprintln!(
        "cmcd-load: {} events/s ({} lines per request, {} sessions in groups of {}, {} connections), {} s warmup + {} s window",
        if o.rate > 0.0 { format!("{:.0}", o.rate) } else { "max (closed loop)".into() },
        o.lines,
        shared.groups.count * o.per_group,
        o.per_group,
        o.conns,
        o.warmup,
        o.seconds
    );
    let mut tasks = Vec::new();
    for i in 0..o.conns {
        tasks.push(tokio::spawn(worker(shared.clone(), i, start, window.1)));
    }
    let cpu = |pid: &Option<String>| pid.as_deref().and_then(proc_cpu_seconds);
    let mut tick = tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let (mut last_accepted, mut last_req, mut last_429) = (0u64, 0u64, 0u64);
    let mut last = before;
    let mut last_cpu = cpu(&o.server_pid);
    let mut window_start: Option<(ServerFigures, Option<f64>, u64)> = None;
    let window_end: Option<(ServerFigures, Option<f64>, u64)>;
    let mut t = 0u64;
    loop {
        tick.tick().await;
        t += 1;
        let now = Instant::now();
        let f = scrape(&mut metrics).await.unwrap_or(last);
        let server_cpu = cpu(&o.server_pid);
        let c = &shared.counters;
        let (accepted, req, r429) =
            (c.accepted_events.load(Relaxed), c.requests.load(Relaxed), c.refused_429.load(Relaxed));
        let mut second = std::mem::take(&mut *shared.second.lock().unwrap());
        second.sort_unstable();
        eprintln!(
            "t={t:>3}s req/s {:>5} accepted ev/s {:>6} 429/s {:>4} lat p50 {:>7} p99 {:>7} ms | server reports/s {:>6} written/s {:>6} batches/s {:>3} queue {:>6} cpu {:>5}%",
            req - last_req,
            accepted - last_accepted,
            r429 - last_429,
            num(percentile(&second, 0.5), 1),
            num(percentile(&second, 0.99), 1),
            f.reports - last.reports,
            f.written - last.written,
            f.batches - last.batches,
            f.queue,
            num(server_cpu.zip(last_cpu).map(|(a, b)| (a - b) * 100.0), 0),
        );
        (last_accepted, last_req, last_429, last, last_cpu) = (accepted, req, r429, f, server_cpu);
        if window_start.is_none() && now >= window.0 {
            window_start = Some((f, server_cpu, accepted));
        }
        if now >= window.1 {
            window_end = Some((f, server_cpu, accepted));
            break;
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    // Wait until everything accepted is written.
    let drain_started = Instant::now();
    let mut after = last;
    while drain_started.elapsed() < Duration::from_secs(shared.opts.drain) {
        after = scrape(&mut metrics).await.unwrap_or(after);
        if after.queue == 0.0 && after.written >= after.reports {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain_s = drain_started.elapsed().as_secs_f64();
    let (ws, we) = (window_start.expect("window start"), window_end.expect("window end"));
    let secs = shared.opts.seconds as f64;
    let mut lat = std::mem::take(&mut *shared.latencies.lock().unwrap());
    lat.sort_unstable();
    let c = &shared.counters;
    let accepted_rate = (we.2 - ws.2) as f64 / secs;
    let server_reports_rate = (we.0.reports - ws.0.reports) / secs;
    let written_rate = (we.0.written - ws.0.written) / secs;
    let cpu_share = ws.1.zip(we.1).map(|(a, b)| (b - a) / secs);
    let errors = shared.errors_seen.lock().unwrap().clone();
    eprintln!(
        "summary: window {secs} s: accepted {accepted_rate:.0} ev/s (client), server reports {server_reports_rate:.0}/s, \
         written {written_rate:.0}/s; accept latency p50 {} p90 {} p99 {} max {} ms ({} requests in the window); \
         429: {}, other status: {}, errors: {} {errors:?}; server CPU {} cores; \
         after the run: reports {} written {} (all written {:.1} s after the window), batches {}, write errors {}",
        num(percentile(&lat, 0.5), 1),
        num(percentile(&lat, 0.9), 1),
        num(percentile(&lat, 0.99), 1),
        num(percentile(&lat, 1.0), 1),
        lat.len(),
        c.refused_429.load(Relaxed),
        c.other_status.load(Relaxed),
        c.errors.load(Relaxed),
        num(cpu_share, 2),
        after.reports - before.reports,
        after.written - before.written,
        drain_s,
        after.batches - before.batches,
        after.write_errors - before.write_errors,
    );
    println!(
        "{{\"rate\":{},\"lines\":{},\"sessions\":{},\"conns\":{},\"seconds\":{secs},\"accepted_events_per_s\":{accepted_rate:.0},\
         \"server_reports_per_s\":{server_reports_rate:.0},\"written_per_s\":{written_rate:.0},\"latency_ms\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}}},\
         \"requests_in_window\":{},\"refused_429\":{},\"other_status\":{},\"errors\":{},\"server_cpu_cores\":{},\
         \"reports_total\":{},\"written_total\":{},\"batches\":{},\"write_errors\":{},\"drain_s\":{drain_s:.1}}}",
        shared.opts.rate,
        shared.opts.lines,
        shared.groups.count * shared.opts.per_group,
        shared.opts.conns,
        num(percentile(&lat, 0.5), 2),
        num(percentile(&lat, 0.9), 2),
        num(percentile(&lat, 0.99), 2),
        num(percentile(&lat, 1.0), 2),
        lat.len(),
        c.refused_429.load(Relaxed),
        c.other_status.load(Relaxed),
        c.errors.load(Relaxed),
        num(cpu_share, 3),
        after.reports - before.reports,
        after.written - before.written,
        after.batches - before.batches,
        after.write_errors - before.write_errors,
    );
    Ok(())
}
