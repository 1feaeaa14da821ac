//! `flv-load`: opens N concurrent viewers against one live stream and measures what they
//! receive and what serving them costs the server process.
//!
//! Viewer kinds, chosen by the URL scheme:
//! * `http://host:port/path.flv` — HTTP-FLV: a raw HTTP/1.1 `GET` over a `TcpStream` (no HTTP
//!   client library); the status line must be `200`, then every byte after the response head is
//!   counted (with `Transfer-Encoding: chunked` that includes the few bytes of chunk framing).
//! * `rtmp://host:port/app/name` — RTMP play: handshake with `rml_rtmp::handshake::Handshake`
//!   (client side) and `rml_rtmp::sessions::ClientSession` for `connect` + `play`. Once the server
//!   answers `NetStream.Play.Start` the client switches to *count mode* (default): it stops parsing
//!   and only counts bytes, and writes an RTMP Acknowledgement message itself (a 16-byte type-0
//!   chunk on chunk stream 2) every `--ack-window` bytes, so the server still gets the acks a real
//!   player sends. Parsing every chunk of N streams in the client would steal CPU from the server
//!   on a small machine. `--rtmp-parse` keeps feeding every byte to the `ClientSession` instead
//!   (it then answers acknowledgements itself and validates the chunk stream).
//!
//! Timeline: sample the server's RSS (baseline) → connect the viewers `--ramp-ms` apart →
//! `--warmup` seconds → measurement window of `--seconds` → print one JSON line → exit.
//! During the window the server process (`--server-pid`) is sampled from `/proc/PID/stat`
//! (utime + stime; assumes the usual `CLK_TCK` of 100 ticks per second, to avoid a libc
//! dependency) and `/proc/PID/status` (`VmRSS`, once per second, last and peak values kept).
//!
//! JSON fields: `viewers` (N), `started` (viewers that reached playback), `connected` (not
//! closed and received bytes within the last 2 s of the window), `closed` (closed/failed by the
//! end), `seconds`, `bytes_received_total` (in the window, all viewers), `mean_kbps_per_viewer`
//! (window bytes × 8 / 1000 / seconds / N), `min_kbps_viewer` / `p10_kbps_viewer` /
//! `median_kbps_viewer` (per-viewer distribution in the window), `server_cpu_seconds`,
//! `cpu_seconds_per_viewer_second` (server CPU s / (N × seconds)), `server_rss_kib` (end of
//! window), `server_rss_peak_kib`, `server_rss_baseline_kib`, `rss_per_viewer_kib`
//! ((rss − baseline) / N), `client_cpu_seconds` (this process, in the window), `errors`
//! (message → count) and `label` (free text from `--label`).
//!
//! Run (one current-thread tokio runtime, so the client uses at most one core):
//! ```text
//! cargo build --release -p rill-benches --bin flv-load
//! flv-load --url rtmp://127.0.0.1:11935/live/bench --viewers 100 --seconds 20 --warmup 5 \
//!          --ramp-ms 2 --server-pid "$(pgrep -n rill)" --label rill-rtmp
//! ```

use anyhow::{anyhow, bail, Context, Result};
use rill_benches::{json_str, num, proc_cpu_seconds, proc_rss_kib};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const READ_BUF: usize = 64 * 1024;

const ST_CONNECTING: u8 = 0;
const ST_RECEIVING: u8 = 1;
const ST_CLOSED: u8 = 2;

struct Opts {
    url: String,
    viewers: usize,
    seconds: f64,
    warmup: f64,
    ramp_ms: u64,
    server_pid: Option<u32>,
    ack_window: u64,
    rtmp_parse: bool,
    label: String,
}

fn usage() -> &'static str {
    "usage: flv-load --url (http://H:P/PATH.flv | rtmp://H:P/APP/NAME) [--viewers N=10] \
     [--seconds T=20] [--warmup S=5] [--ramp-ms MS=2] [--server-pid PID] \
     [--ack-window BYTES=2500000] [--rtmp-parse] [--label TEXT]"
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        url: String::new(),
        viewers: 10,
        seconds: 20.0,
        warmup: 5.0,
        ramp_ms: 2,
        server_pid: None,
        ack_window: 2_500_000,
        rtmp_parse: false,
        label: String::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| anyhow!("{name} needs a value\n{}", usage()));
        match a.as_str() {
            "--url" => o.url = val("--url")?,
            "--viewers" => o.viewers = val("--viewers")?.parse().context("--viewers")?,
            "--seconds" => o.seconds = val("--seconds")?.parse().context("--seconds")?,
            "--warmup" => o.warmup = val("--warmup")?.parse().context("--warmup")?,
            "--ramp-ms" => o.ramp_ms = val("--ramp-ms")?.parse().context("--ramp-ms")?,
            "--server-pid" => o.server_pid = Some(val("--server-pid")?.parse().context("--server-pid")?),
            "--ack-window" => o.ack_window = val("--ack-window")?.parse().context("--ack-window")?,
            "--label" => o.label = val("--label")?,
            "--rtmp-parse" => o.rtmp_parse = true,
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
    if o.viewers == 0 || o.seconds <= 0.0 || o.ack_window == 0 {
        bail!("--viewers, --seconds and --ack-window must be > 0");
    }
    Ok(o)
}

enum Target {
    Http { addr: String, host: String, path: String },
    Rtmp { addr: String, app: String, name: String, tc_url: String },
}

fn parse_url(url: &str) -> Result<Target> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| anyhow!("bad url {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    match scheme {
        "http" => {
            let addr = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:80") };
            Ok(Target::Http { addr, host: hostport.to_string(), path: path.to_string() })
        }
        "rtmp" => {
            let addr = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:1935") };
            let p = path.trim_start_matches('/');
            let (app, name) = p.rsplit_once('/').ok_or_else(|| anyhow!("rtmp url needs /app/name: {url}"))?;
            if app.is_empty() || name.is_empty() {
                bail!("rtmp url needs /app/name: {url}");
            }
            Ok(Target::Rtmp {
                tc_url: format!("rtmp://{hostport}/{app}"),
                addr,
                app: app.to_string(),
                name: name.to_string(),
            })
        }
        _ => bail!("unsupported scheme {scheme} (http or rtmp)"),
    }
}

#[derive(Default)]
struct Viewer {
    bytes: AtomicU64,
    last_rx_ms: AtomicU64,
    state: AtomicU8,
}

struct Shared {
    start: Instant,
    viewers: Vec<Viewer>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
    fn got(&self, v: &Viewer, n: usize) {
        v.bytes.fetch_add(n as u64, Ordering::Relaxed);
        v.last_rx_ms.store(self.now_ms(), Ordering::Relaxed);
    }
}

async fn run_viewer(shared: Arc<Shared>, idx: usize, target: Arc<Target>, ack_window: u64, parse: bool) {
    let v = &shared.viewers[idx];
    let result = match &*target {
        Target::Http { addr, host, path } => http_viewer(&shared, v, addr, host, path).await,
        Target::Rtmp { addr, app, name, tc_url } => {
            rtmp_viewer(&shared, v, addr, app, name, tc_url, ack_window, parse).await
        }
    };
    v.state.store(ST_CLOSED, Ordering::Relaxed);
    let msg = match result {
        Ok(()) => "closed by server (EOF)".to_string(),
        Err(e) => {
            let mut s = format!("{e:#}");
            s.truncate(120);
            s
        }
    };
    *shared.errors.lock().unwrap().entry(msg).or_default() += 1;
}

async fn http_viewer(shared: &Shared, v: &Viewer, addr: &str, host: &str, path: &str) -> Result<()> {
    let mut s = TcpStream::connect(addr).await.context("connect")?;
    s.set_nodelay(true)?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: flv-load\r\nAccept: */*\r\n\r\n");
    s.write_all(req.as_bytes()).await.context("write request")?;
    let mut buf = vec![0u8; READ_BUF];
    let mut head: Vec<u8> = Vec::new();
    loop {
        let n = s.read(&mut buf).await.context("read head")?;
        if n == 0 {
            bail!("EOF before response head");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let status =
                String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\r').unwrap_or(0)]).to_string();
            if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
                bail!("bad status: {status}");
            }
            v.state.store(ST_RECEIVING, Ordering::Relaxed);
            shared.got(v, head.len() - (end + 4));
            break;
        }
        if head.len() > 16 * 1024 {
            bail!("response head too long");
        }
    }
    loop {
        let n = s.read(&mut buf).await.context("read body")?;
        if n == 0 {
            return Ok(());
        }
        shared.got(v, n);
    }
}

async fn send_results(s: &mut TcpStream, results: &[ClientSessionResult]) -> Result<()> {
    for r in results {
        if let ClientSessionResult::OutboundResponse(p) = r {
            s.write_all(&p.bytes).await.context("write rtmp")?;
        }
    }
    Ok(())
}

/// An RTMP Acknowledgement (message type 3) as one chunk with a full type-0 header on chunk
/// stream 2, so it does not depend on the header-compression state of earlier chunks.
fn ack_chunk(sequence_number: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x02; // fmt 0, csid 2
                 // timestamp 0 (c[1..4]); message length 4
    c[6] = 4;
    c[7] = 3; // Acknowledgement
              // message stream id 0 (c[8..12], little endian)
    c[12..16].copy_from_slice(&sequence_number.to_be_bytes());
    c
}

#[allow(clippy::too_many_arguments)]
async fn rtmp_viewer(
    shared: &Shared,
    v: &Viewer,
    addr: &str,
    app: &str,
    name: &str,
    tc_url: &str,
    ack_window: u64,
    parse: bool,
) -> Result<()> {
    let mut s = TcpStream::connect(addr).await.context("connect")?;
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; READ_BUF];

    let mut hs = Handshake::new(PeerType::Client);
    let p0p1 = hs.generate_outbound_p0_and_p1().map_err(|e| anyhow!("handshake: {e:?}"))?;
    s.write_all(&p0p1).await.context("write handshake")?;
    let remaining = loop {
        let n = s.read(&mut buf).await.context("read handshake")?;
        if n == 0 {
            bail!("EOF during handshake");
        }
        match hs.process_bytes(&buf[..n]).map_err(|e| anyhow!("handshake: {e:?}"))? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                if !response_bytes.is_empty() {
                    s.write_all(&response_bytes).await.context("write handshake")?;
                }
            }
            HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                if !response_bytes.is_empty() {
                    s.write_all(&response_bytes).await.context("write handshake")?;
                }
                break remaining_bytes;
            }
        }
    };

    let mut config = ClientSessionConfig::new();
    config.tc_url = Some(tc_url.to_string());
    let (mut session, initial) = ClientSession::new(config).map_err(|e| anyhow!("session: {e:?}"))?;
    send_results(&mut s, &initial).await?;
    let r = session.request_connection(app.to_string()).map_err(|e| anyhow!("connect request: {e:?}"))?;
    send_results(&mut s, &[r]).await?;

    // Control phase: feed everything to the session until playback is accepted.
    let mut received: u64 = remaining.len() as u64;
    let mut pending = remaining;
    let mut playing = false;
    while !playing {
        if pending.is_empty() {
            let n = s.read(&mut buf).await.context("read control")?;
            if n == 0 {
                bail!("EOF before play start");
            }
            received += n as u64;
            pending = buf[..n].to_vec();
        }
        let results = session.handle_input(&pending).map_err(|e| anyhow!("rtmp session: {e:?}"))?;
        pending.clear();
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => s.write_all(&p.bytes).await.context("write rtmp")?,
                ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestAccepted) => {
                    let r = session.request_playback(name.to_string()).map_err(|e| anyhow!("play request: {e:?}"))?;
                    send_results(&mut s, &[r]).await?;
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestRejected { description }) => {
                    bail!("connect rejected: {description}")
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::PlaybackRequestAccepted) => playing = true,
                // rml_rtmp does not know e.g. NetStream.Play.Reset (sent before Play.Start);
                // only failure codes end the viewer.
                ClientSessionResult::RaisedEvent(ClientSessionEvent::UnhandleableOnStatusCode { code })
                    if code.contains("Failed") || code.contains("NotFound") || code.contains("Reject") =>
                {
                    bail!("onStatus {code}")
                }
                _ => {}
            }
        }
    }
    v.state.store(ST_RECEIVING, Ordering::Relaxed);
    shared.got(v, 0);

    if parse {
        loop {
            let n = s.read(&mut buf).await.context("read media")?;
            if n == 0 {
                return Ok(());
            }
            shared.got(v, n);
            let results = session.handle_input(&buf[..n]).map_err(|e| anyhow!("rtmp session: {e:?}"))?;
            send_results(&mut s, &results).await?;
        }
    }
    let mut since_ack: u64 = 0;
    loop {
        let n = s.read(&mut buf).await.context("read media")?;
        if n == 0 {
            return Ok(());
        }
        shared.got(v, n);
        received += n as u64;
        since_ack += n as u64;
        if since_ack >= ack_window {
            since_ack = 0;
            s.write_all(&ack_chunk(received as u32)).await.context("write ack")?;
        }
    }
}

fn main() -> Result<()> {
    let opts = parse_opts()?;
    let target = Arc::new(parse_url(&opts.url)?);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(run(opts, target))
}

async fn run(opts: Opts, target: Arc<Target>) -> Result<()> {
    let pid = opts.server_pid.map(|p| p.to_string());
    let server_rss = || pid.as_deref().and_then(proc_rss_kib);
    let server_cpu = || pid.as_deref().and_then(proc_cpu_seconds);
    let baseline_rss = server_rss();

    let shared = Arc::new(Shared {
        start: Instant::now(),
        viewers: (0..opts.viewers).map(|_| Viewer::default()).collect(),
        errors: Mutex::new(BTreeMap::new()),
    });
    for i in 0..opts.viewers {
        tokio::spawn(run_viewer(shared.clone(), i, target.clone(), opts.ack_window, opts.rtmp_parse));
        if opts.ramp_ms > 0 {
            tokio::time::sleep(Duration::from_millis(opts.ramp_ms)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(opts.warmup)).await;

    let per_viewer0: Vec<u64> = shared.viewers.iter().map(|v| v.bytes.load(Ordering::Relaxed)).collect();
    let cpu0 = server_cpu();
    let self_cpu0 = proc_cpu_seconds("self");
    let t0 = Instant::now();
    let mut rss_peak = server_rss();
    let window = Duration::from_secs_f64(opts.seconds);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        let left = window.saturating_sub(t0.elapsed());
        if left.is_zero() {
            break;
        }
        tokio::select! {
            _ = tick.tick() => {
                if let Some(r) = server_rss() {
                    rss_peak = Some(rss_peak.map_or(r, |p| p.max(r)));
                }
            }
            _ = tokio::time::sleep(left) => break,
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = server_cpu();
    let self_cpu1 = proc_cpu_seconds("self");
    let rss_end = server_rss();
    let now_ms = shared.now_ms();

    let n = opts.viewers as f64;
    let mut per_viewer_kbps: Vec<f64> = Vec::with_capacity(opts.viewers);
    let (mut total, mut started, mut connected, mut closed) = (0u64, 0usize, 0usize, 0usize);
    for (v, b0) in shared.viewers.iter().zip(&per_viewer0) {
        let b = v.bytes.load(Ordering::Relaxed) - b0;
        total += b;
        per_viewer_kbps.push(b as f64 * 8.0 / 1000.0 / elapsed);
        let st = v.state.load(Ordering::Relaxed);
        let last = v.last_rx_ms.load(Ordering::Relaxed);
        if st != ST_CONNECTING && last > 0 {
            started += 1;
        }
        if st == ST_RECEIVING && now_ms.saturating_sub(last) <= 2000 {
            connected += 1;
        }
        if st == ST_CLOSED {
            closed += 1;
        }
    }
    per_viewer_kbps.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| per_viewer_kbps[((per_viewer_kbps.len() - 1) as f64 * p).round() as usize];
    let server_cpu_s = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let client_cpu_s = match (self_cpu0, self_cpu1) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let rss_per_viewer = match (rss_end, baseline_rss) {
        (Some(r), Some(b)) => Some((r as f64 - b as f64) / n),
        _ => None,
    };
    let errors = shared.errors.lock().unwrap();
    let errors_json: Vec<String> = errors.iter().map(|(k, v)| format!("{}:{v}", json_str(k))).collect();
    let opt_u = |x: Option<u64>| x.map_or("null".to_string(), |v| v.to_string());

    println!(
        "{{\"label\":{},\"url\":{},\"viewers\":{},\"started\":{},\"connected\":{},\"closed\":{},\"seconds\":{:.2},\
         \"bytes_received_total\":{},\"mean_kbps_per_viewer\":{:.1},\"min_kbps_viewer\":{:.1},\"p10_kbps_viewer\":{:.1},\
         \"median_kbps_viewer\":{:.1},\"server_cpu_seconds\":{},\"cpu_seconds_per_viewer_second\":{},\
         \"server_rss_kib\":{},\"server_rss_peak_kib\":{},\"server_rss_baseline_kib\":{},\"rss_per_viewer_kib\":{},\
         \"client_cpu_seconds\":{},\"rtmp_mode\":{},\"errors\":{{{}}}}}",
        json_str(&opts.label),
        json_str(&opts.url),
        opts.viewers,
        started,
        connected,
        closed,
        elapsed,
        total,
        total as f64 * 8.0 / 1000.0 / elapsed / n,
        pct(0.0),
        pct(0.10),
        pct(0.5),
        num(server_cpu_s, 2),
        num(server_cpu_s.map(|c| c / (n * elapsed)), 6),
        opt_u(rss_end),
        opt_u(rss_peak),
        opt_u(baseline_rss),
        num(rss_per_viewer, 1),
        num(client_cpu_s, 2),
        json_str(if opts.rtmp_parse { "parse" } else { "count" }),
        errors_json.join(",")
    );
    // Viewer tasks are still running; exit without waiting for them.
    std::process::exit(0);
}
