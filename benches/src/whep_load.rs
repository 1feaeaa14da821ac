//! `whep-load`: N WHEP viewers of one live stream, each a webrtc-rs sans-IO (`rtc`)
//! `RTCPeerConnection` on its own UDP socket, to measure what serving them costs the server and
//! how long a viewer waits for its first frame.
//!
//! Each viewer: builds a recvonly offer (H.264 packetization-mode 1 as PT 102, Opus as PT 111),
//! `POST`s it to `http://HOST:PORT/whep/<name>` with a raw HTTP/1.1 request over a `TcpStream`
//! (no HTTP client library), applies the answer (keeping only the candidates whose address is the
//! URL's host, when there is one, so a loopback client does not also probe the LAN address), then
//! runs ICE/DTLS/SRTP against the server's media port and counts what arrives: RTP packets and
//! bytes per kind, sequence gaps per SSRC (`lost`; packets older than the newest, e.g. NACK
//! retransmissions filling a gap, are counted apart as `late`, not subtracted),
//! video frames (marker-bit packets), and two times measured from the start of the `POST`:
//! `first_rtp` (first video RTP packet) and `first_key` (the last packet of the first keyframe
//! access unit — SPS/IDR — whose packets all arrived in sequence, i.e. a decodable first frame).
//!
//! Timeline: viewers start `--ramp-ms` apart → `--warmup` seconds → measurement window of
//! `--seconds` (server CPU from `/proc/PID/stat` when `--server-pid` is given, and this
//! process's own CPU) → `--probes` new viewers, `--probe-gap-ms` apart, each of which is closed
//! once it has its first keyframe (the *new viewer's first-frame time while N are watching*) →
//! `DELETE` every session → summary. One line per second on stdout (`t=… connected=… kbps=…`),
//! then a `summary` line and one JSON line. `--viewers 0` measures the idle baseline the same way.
//!
//! Run (current-thread tokio runtime by default, so the client uses at most one core):
//! ```text
//! cargo build --release -p rill-benches --bin whep-load
//! whep-load --url http://127.0.0.1:18080/whep/bench --viewers 50 --seconds 30 \
//!           --server-pid "$(cat rill.pid)"
//! ```

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use rill_benches::{json_str, num, proc_cpu_seconds};
use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::RTCMessage;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const VIDEO_PT: u8 = 102;
const AUDIO_PT: u8 = 111;

struct Opts {
    url: String,
    viewers: usize,
    seconds: f64,
    warmup: f64,
    ramp_ms: u64,
    probes: usize,
    probe_gap_ms: u64,
    server_pid: Option<String>,
    threads: usize,
    label: String,
}

fn usage() -> &'static str {
    "usage: whep-load --url http://H:P/whep/NAME [--viewers N=10] [--seconds T=30] [--warmup S=5] \
     [--ramp-ms MS=20] [--probes K=10] [--probe-gap-ms MS=1100] [--server-pid PID] [--threads 1] \
     [--label TEXT]"
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        url: String::new(),
        viewers: 10,
        seconds: 30.0,
        warmup: 5.0,
        ramp_ms: 20,
        probes: 10,
        probe_gap_ms: 1100,
        server_pid: None,
        threads: 1,
        label: String::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| anyhow!("{a} needs a value\n{}", usage()));
        match a.as_str() {
            "--url" => o.url = val()?,
            "--viewers" => o.viewers = val()?.parse()?,
            "--seconds" => o.seconds = val()?.parse()?,
            "--warmup" => o.warmup = val()?.parse()?,
            "--ramp-ms" => o.ramp_ms = val()?.parse()?,
            "--probes" => o.probes = val()?.parse()?,
            "--probe-gap-ms" => o.probe_gap_ms = val()?.parse()?,
            "--server-pid" => o.server_pid = Some(val()?),
            "--threads" => o.threads = val()?.parse()?,
            "--label" => o.label = val()?,
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0)
            }
            _ => bail!("unknown argument {a}\n{}", usage()),
        }
    }
    if o.url.is_empty() {
        bail!("--url is required\n{}", usage());
    }
    Ok(o)
}

/// Aggregate counters over all viewers (read once per second by the reporter).
#[derive(Default)]
struct Totals {
    connected: AtomicU64,
    failed: AtomicU64,
    video_packets: AtomicU64,
    audio_packets: AtomicU64,
    bytes: AtomicU64,
    frames: AtomicU64,
    lost: AtomicU64,
    late: AtomicU64,
}

/// What one viewer measured, for the summary.
#[derive(Default, Clone)]
struct ViewerResult {
    probe: bool,
    first_rtp: Option<Duration>,
    first_key: Option<Duration>,
    connect: Option<Duration>,
    error: Option<String>,
}

struct Shared {
    totals: Totals,
    results: Mutex<Vec<ViewerResult>>,
    stop: AtomicBool,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// HTTP target: `host:port` and the path.
struct Target {
    addr: SocketAddr,
    host_header: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Target> {
    let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("only http:// URLs: {url}"))?;
    let (hostport, path) = rest.split_at(rest.find('/').ok_or_else(|| anyhow!("no path in {url}"))?);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .with_context(|| format!("resolving {hostport}"))?
        .next()
        .ok_or_else(|| anyhow!("{hostport} resolves to nothing"))?;
    Ok(Target { addr, host_header: hostport.to_owned(), path: path.to_owned() })
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, headers, body).
async fn http(t: &Target, method: &str, path: &str, body: &str) -> Result<(u16, Vec<(String, String)>, String)> {
    let mut s = TcpStream::connect(t.addr).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", t.host_header);
    if !body.is_empty() {
        req.push_str(&format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::with_capacity(8192);
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("truncated HTTP response"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Ok((status, headers, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn peer_connection(local: SocketAddr) -> Result<RTCPeerConnection> {
    let mut engine = MediaEngine::default();
    let video = RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f".to_owned(),
        rtcp_feedback: vec![],
    };
    let audio = RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    };
    engine.register_codec(RTCRtpCodecParameters { rtp_codec: video, payload_type: VIDEO_PT }, RtpCodecKind::Video)?;
    engine.register_codec(RTCRtpCodecParameters { rtp_codec: audio, payload_type: AUDIO_PT }, RtpCodecKind::Audio)?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)?;
    let now = Instant::now();
    let mut pc =
        RTCPeerConnectionBuilder::new().with_media_engine(engine).with_interceptor_registry(registry).build(now)?;
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit { direction: RTCRtpTransceiverDirection::Recvonly, ..Default::default() }),
        )?;
    }
    let offer = pc.create_offer(None)?;
    pc.set_local_description(now, offer)?;
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: local.ip().to_string(),
            port: local.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()?;
    pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json()?)?;
    Ok(pc)
}

/// Keeps only `a=candidate` lines on `host` when at least one is (the server also advertises
/// its default-route address; a loopback client has no use for it).
fn filter_candidates(answer: &str, host: IpAddr) -> String {
    let on_host = |l: &str| l.starts_with("a=candidate") && l.split_whitespace().nth(4) == Some(&host.to_string());
    if !answer.lines().any(on_host) {
        return answer.to_owned();
    }
    let mut out = String::with_capacity(answer.len());
    for l in answer.split_inclusive('\n') {
        let t = l.trim_end();
        if t.starts_with("a=candidate") && !on_host(t) {
            continue;
        }
        out.push_str(l);
    }
    out
}

/// Does this H.264 RTP payload start (part of) a keyframe access unit: an IDR or SPS NAL, a
/// STAP-A holding one, or the start fragment of an FU-A IDR?
fn starts_keyframe(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    match b0 & 0x1f {
        5 | 7 => true,
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let n = u16::from_be_bytes([p[i], p[i + 1]]) as usize;
                if matches!(p[i + 2] & 0x1f, 5 | 7) {
                    return true;
                }
                i += 2 + n;
            }
            false
        }
        28 => p.len() > 1 && p[1] & 0x80 != 0 && p[1] & 0x1f == 5,
        _ => false,
    }
}

/// Sequence-gap accounting for one SSRC.
struct SeqTrack {
    last: u16,
}

/// Per-viewer receive state.
#[derive(Default)]
struct Rx {
    seqs: HashMap<u32, SeqTrack>,
    /// (timestamp, next expected sequence number) of the keyframe access unit being received.
    key_au: Option<(u32, u16)>,
    first_rtp: Option<Duration>,
    first_key: Option<Duration>,
}

impl Rx {
    fn on_rtp(&mut self, totals: &Totals, t0: Instant, pkt: &rtc::rtp::packet::Packet) {
        let h = &pkt.header;
        let video = h.payload_type == VIDEO_PT;
        totals.bytes.fetch_add((pkt.payload.len() + 12) as u64, Relaxed);
        if video {
            totals.video_packets.fetch_add(1, Relaxed);
        } else {
            totals.audio_packets.fetch_add(1, Relaxed);
        }
        match self.seqs.get_mut(&h.ssrc) {
            None => {
                self.seqs.insert(h.ssrc, SeqTrack { last: h.sequence_number });
            }
            Some(s) => {
                let d = h.sequence_number.wrapping_sub(s.last);
                if d == 0 {
                } else if d < 0x8000 {
                    totals.lost.fetch_add(u64::from(d - 1), Relaxed);
                    s.last = h.sequence_number;
                } else {
                    // Older than the newest: a retransmission or reordering filling a gap.
                    totals.late.fetch_add(1, Relaxed);
                }
            }
        }
        if !video {
            return;
        }
        if h.marker {
            totals.frames.fetch_add(1, Relaxed);
        }
        if self.first_rtp.is_none() {
            self.first_rtp = Some(t0.elapsed());
        }
        if self.first_key.is_some() {
            return;
        }
        let continues = matches!(self.key_au, Some((ts, next)) if ts == h.timestamp && next == h.sequence_number);
        if !continues {
            self.key_au = starts_keyframe(&pkt.payload).then_some((h.timestamp, h.sequence_number));
        }
        if let Some((ts, _)) = self.key_au {
            if h.marker {
                self.first_key = Some(t0.elapsed());
                self.key_au = None;
            } else {
                self.key_au = Some((ts, h.sequence_number.wrapping_add(1)));
            }
        }
    }
}

fn note_error(shared: &Shared, e: &str) {
    *shared.errors.lock().unwrap().entry(e.chars().take(120).collect()).or_default() += 1;
}

/// One viewer from `POST` to `DELETE`. A probe returns as soon as it has its first keyframe.
async fn viewer(target: Arc<Target>, shared: Arc<Shared>, probe: bool) -> ViewerResult {
    let mut res = ViewerResult { probe, ..Default::default() };
    let mut location = None;
    if let Err(e) = run_viewer(&target, &shared, probe, &mut res, &mut location).await {
        let msg = format!("{e:#}");
        note_error(&shared, &msg);
        res.error = Some(msg);
    }
    if let Some(loc) = location {
        if let Err(e) = http(&target, "DELETE", &loc, "").await {
            note_error(&shared, &format!("DELETE: {e:#}"));
        }
    }
    res
}

async fn run_viewer(
    target: &Target,
    shared: &Shared,
    probe: bool,
    res: &mut ViewerResult,
    location: &mut Option<String>,
) -> Result<()> {
    let bind_ip: IpAddr = if target.addr.ip().is_loopback() { target.addr.ip() } else { [0, 0, 0, 0].into() };
    let socket = UdpSocket::bind(SocketAddr::new(bind_ip, 0)).await?;
    let mut local = socket.local_addr()?;
    if local.ip().is_unspecified() {
        // Learn the source address the kernel picks towards the server.
        let probe_sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
        probe_sock.connect(target.addr)?;
        local.set_ip(probe_sock.local_addr()?.ip());
    }
    let mut pc = peer_connection(local)?;
    let offer = pc.local_description().ok_or_else(|| anyhow!("no local description"))?.sdp;
    let t0 = Instant::now();
    let (status, headers, body) = http(target, "POST", &target.path, &offer).await.context("POST")?;
    if status != 201 {
        bail!("POST: HTTP {status}: {}", body.trim());
    }
    *location = headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone());
    let answer = filter_candidates(&body, target.addr.ip());
    pc.set_remote_description(Instant::now(), RTCSessionDescription::answer(answer)?)?;

    let mut rx = Rx::default();
    let mut buf = vec![0u8; 2048];
    let mut connected = false;
    let result = loop {
        while let Some(m) = pc.poll_write() {
            let _ = socket.send_to(&m.message, m.transport.peer_addr).await;
        }
        let mut failed = None;
        while let Some(ev) = pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                match s {
                    RTCPeerConnectionState::Connected if !connected => {
                        connected = true;
                        res.connect = Some(t0.elapsed());
                        if !probe {
                            shared.totals.connected.fetch_add(1, Relaxed);
                        }
                    }
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => failed = Some(s),
                    _ => {}
                }
            }
        }
        while let Some(m) = pc.poll_read() {
            if let RTCMessage::RtpPacket(_, pkt) = m.message {
                rx.on_rtp(&shared.totals, t0, &pkt);
            }
        }
        if let Some(s) = failed {
            break Err(anyhow!("peer connection {s}"));
        }
        if shared.stop.load(Relaxed) || (probe && rx.first_key.is_some()) {
            break Ok(());
        }
        if !connected && t0.elapsed() > Duration::from_secs(20) {
            break Err(anyhow!("not connected after 20 s"));
        }
        let now = Instant::now();
        let deadline =
            pc.poll_timeout().unwrap_or(now + Duration::from_millis(100)).min(now + Duration::from_millis(100));
        if deadline <= now {
            pc.handle_timeout(now)?;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {
                pc.handle_timeout(Instant::now())?;
            }
            r = socket.recv_from(&mut buf) => {
                let (n, from) = r?;
                let transport = TransportContext {
                    local_addr: local,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                };
                pc.handle_read(TaggedBytesMut { now: Instant::now(), transport, message: BytesMut::from(&buf[..n]) })?;
            }
        }
    };
    if connected && !probe {
        shared.totals.connected.fetch_sub(1, Relaxed);
    }
    res.first_rtp = rx.first_rtp;
    res.first_key = rx.first_key;
    let _ = pc.close();
    result
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    Some(sorted[i])
}

fn ms_stats(v: impl Iterator<Item = Option<Duration>>) -> (usize, Option<f64>, Option<f64>, Option<f64>) {
    let mut xs: Vec<f64> = v.flatten().map(|d| d.as_secs_f64() * 1000.0).collect();
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (xs.len(), quantile(&xs, 0.5), quantile(&xs, 0.95), xs.last().copied())
}

fn main() -> Result<()> {
    let o = parse_opts()?;
    let rt = if o.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(o.threads).enable_all().build()?
    };
    rt.block_on(run(o))
}

async fn run(o: Opts) -> Result<()> {
    let target = Arc::new(parse_url(&o.url)?);
    let shared = Arc::new(Shared {
        totals: Totals::default(),
        results: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        errors: Mutex::new(BTreeMap::new()),
    });
    let start = Instant::now();

    // Once-per-second reporter.
    let reporter = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let t = &shared.totals;
            let mut tick = tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
            let (mut vp, mut ap, mut by, mut fr) = (0u64, 0u64, 0u64, 0u64);
            loop {
                tick.tick().await;
                let (v, a, b, f) = (
                    t.video_packets.load(Relaxed),
                    t.audio_packets.load(Relaxed),
                    t.bytes.load(Relaxed),
                    t.frames.load(Relaxed),
                );
                println!(
                    "t={:.0}s connected={} failed={} video_pps={} audio_pps={} frames_ps={} kbps={:.0} lost_total={} late_total={}",
                    start.elapsed().as_secs_f64(),
                    t.connected.load(Relaxed),
                    t.failed.load(Relaxed),
                    v - vp,
                    a - ap,
                    f - fr,
                    (b - by) as f64 * 8.0 / 1000.0,
                    t.lost.load(Relaxed),
                    t.late.load(Relaxed),
                );
                (vp, ap, by, fr) = (v, a, b, f);
            }
        })
    };

    let spawn_viewer = |probe: bool| {
        let (target, shared) = (target.clone(), shared.clone());
        tokio::spawn(async move {
            let r = viewer(target, shared.clone(), probe).await;
            if r.error.is_some() && !probe {
                shared.totals.failed.fetch_add(1, Relaxed);
            }
            shared.results.lock().unwrap().push(r);
        })
    };
    let mut handles = Vec::new();
    for i in 0..o.viewers {
        if i > 0 && o.ramp_ms > 0 {
            tokio::time::sleep(Duration::from_millis(o.ramp_ms)).await;
        }
        handles.push(spawn_viewer(false));
    }
    tokio::time::sleep(Duration::from_secs_f64(o.warmup)).await;

    // Measurement window.
    let cpu = |pid: &Option<String>| pid.as_deref().and_then(proc_cpu_seconds);
    let t = &shared.totals;
    let (srv0, me0, b0, lost0) =
        (cpu(&o.server_pid), proc_cpu_seconds("self"), t.bytes.load(Relaxed), t.lost.load(Relaxed));
    let (vp0, f0) = (t.video_packets.load(Relaxed), t.frames.load(Relaxed));
    let w0 = Instant::now();
    let mut min_connected = u64::MAX;
    while w0.elapsed().as_secs_f64() < o.seconds {
        tokio::time::sleep(Duration::from_millis(250)).await;
        min_connected = min_connected.min(t.connected.load(Relaxed));
    }
    let window = w0.elapsed().as_secs_f64();
    let (srv1, me1, b1, lost1) =
        (cpu(&o.server_pid), proc_cpu_seconds("self"), t.bytes.load(Relaxed), t.lost.load(Relaxed));
    let (vp1, f1) = (t.video_packets.load(Relaxed), t.frames.load(Relaxed));
    let connected_end = t.connected.load(Relaxed);

    // New viewers while N are watching.
    let mut probe_handles = Vec::new();
    for i in 0..o.probes {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(o.probe_gap_ms)).await;
        }
        probe_handles.push(spawn_viewer(true));
    }
    for h in probe_handles {
        let _ = h.await;
    }
    shared.stop.store(true, Relaxed);
    for h in handles {
        let _ = h.await;
    }
    reporter.abort();

    let results = shared.results.lock().unwrap().clone();
    let main: Vec<&ViewerResult> = results.iter().filter(|r| !r.probe).collect();
    let probes: Vec<&ViewerResult> = results.iter().filter(|r| r.probe).collect();
    let (n_rtp, rtp50, rtp95, _) = ms_stats(main.iter().map(|r| r.first_rtp));
    let (n_key, key50, key95, keymax) = ms_stats(main.iter().map(|r| r.first_key));
    let (_, con50, con95, _) = ms_stats(main.iter().map(|r| r.connect));
    let (p_rtp, prtp50, prtp95, _) = ms_stats(probes.iter().map(|r| r.first_rtp));
    let (p_key, pkey50, pkey95, pkeymax) = ms_stats(probes.iter().map(|r| r.first_key));
    let srv_cpu = srv0.zip(srv1).map(|(a, b)| b - a);
    let srv_pct = srv_cpu.map(|c| c / window * 100.0);
    let per_viewer = srv_pct.filter(|_| o.viewers > 0).map(|p| p / o.viewers as f64);
    let me_pct = me0.zip(me1).map(|(a, b)| (b - a) / window * 100.0);
    let kbps = (b1 - b0) as f64 * 8.0 / 1000.0 / window;
    let f = |x: Option<f64>| num(x, 1);
    println!(
        "summary label={} viewers={} connected_end={} connected_min={} failed={} window_s={:.1} \
         server_cpu_pct={} server_cpu_pct_per_viewer={} client_cpu_pct={} kbps_total={:.0} \
         kbps_per_viewer={} video_pps={:.0} frames_per_viewer_s={} lost_in_window={} \
         connect_ms_p50={} p95={} first_rtp_ms_p50={} p95={} (n={}) first_key_ms_p50={} p95={} max={} (n={}) \
         new_viewer_first_rtp_ms_p50={} p95={} (n={}) new_viewer_first_key_ms_p50={} p95={} max={} (n={}/{})",
        o.label,
        o.viewers,
        connected_end,
        if min_connected == u64::MAX { 0 } else { min_connected },
        main.iter().filter(|r| r.error.is_some()).count(),
        window,
        num(srv_pct, 1),
        num(per_viewer, 3),
        num(me_pct, 1),
        kbps,
        num((o.viewers > 0).then(|| kbps / o.viewers as f64), 0),
        (vp1 - vp0) as f64 / window,
        num((o.viewers > 0).then(|| (f1 - f0) as f64 / window / o.viewers as f64), 1),
        lost1 - lost0,
        f(con50),
        f(con95),
        f(rtp50),
        f(rtp95),
        n_rtp,
        f(key50),
        f(key95),
        f(keymax),
        n_key,
        f(prtp50),
        f(prtp95),
        p_rtp,
        f(pkey50),
        f(pkey95),
        f(pkeymax),
        p_key,
        probes.len(),
    );
    let errors = shared.errors.lock().unwrap();
    let errs = errors.iter().map(|(k, v)| format!("{}: {v}", json_str(k))).collect::<Vec<_>>().join(", ");
    println!(
        "{{\"label\": {}, \"viewers\": {}, \"connected_end\": {}, \"window_s\": {:.1}, \"server_cpu_seconds\": {}, \
         \"server_cpu_percent\": {}, \"server_cpu_percent_per_viewer\": {}, \"client_cpu_percent\": {}, \
         \"kbps_total\": {:.0}, \"lost_in_window\": {}, \"lost_total\": {}, \"late_total\": {}, \
         \"first_rtp_ms\": {{\"p50\": {}, \"p95\": {}}}, \"first_key_ms\": {{\"p50\": {}, \"p95\": {}}}, \
         \"new_viewer_first_key_ms\": {{\"p50\": {}, \"p95\": {}, \"n\": {}}}, \"errors\": {{{}}}}}",
        json_str(&o.label),
        o.viewers,
        connected_end,
        window,
        num(srv_cpu, 2),
        num(srv_pct, 1),
        num(per_viewer, 3),
        num(me_pct, 1),
        kbps,
        lost1 - lost0,
        t.lost.load(Relaxed),
        t.late.load(Relaxed),
        f(rtp50),
        f(rtp95),
        f(key50),
        f(key95),
        f(pkey50),
        f(pkey95),
        p_key,
        errs,
    );
    Ok(())
}
