//! Shared harness for end-to-end tests: a real `rill` process on free ports, real ffmpeg
//! publishers and decoders, and a tiny HTTP client for the API. A failing test prints the
//! server's log; `RILL_TEST_PRINT_LOG=1` prints it after every test.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// Real-time tests share two cores: each holds this lock for its whole run, so they run one
/// at a time whatever the test harness's thread count.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Server {
    child: Child,
    pub http: u16,
    pub rtmp: u16,
    /// SRT (UDP) port.
    pub srt: u16,
    /// WebRTC media (UDP) port.
    pub webrtc_udp: u16,
    pub dir: PathBuf,
    env: Vec<(String, String)>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    /// Starts rill in `mode` ("keys" or "open") with extra `RILL_*` settings.
    pub fn start(mode: &str, extra: &[(&str, &str)]) -> Server {
        Server::start_in(mode, None, extra)
    }

    fn start_in(mode: &str, conf: Option<&str>, extra: &[(&str, &str)]) -> Server {
        let dir = std::env::temp_dir().join(format!("rill-e2e-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(conf) = conf {
            std::fs::create_dir_all(dir.join("conf")).unwrap();
            std::fs::write(dir.join("conf/rill.toml"), conf).unwrap();
        }
        // A port picked free may be taken before rill binds it (an outgoing connection gets it
        // from the same ephemeral range): start again on other ports.
        for attempt in 1.. {
            let (http, rtmp) = (free_port(), free_port());
            let mut env: Vec<(String, String)> = vec![
                ("RILL_HTTP_LISTEN".into(), format!("127.0.0.1:{http}")),
                ("RILL_RTMP_LISTEN".into(), format!("127.0.0.1:{rtmp}")),
                ("RILL_SRT_LISTEN".into(), format!("127.0.0.1:{}", free_udp_port())),
                ("RILL_WEBRTC_UDP_LISTEN".into(), format!("127.0.0.1:{}", free_udp_port())),
                ("RILL_SERVER_DATA_DIR".into(), dir.join("data").display().to_string()),
                ("RILL_AUTH_MODE".into(), mode.into()),
                ("RILL_AUTH_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
                ("RILL_SERVER_LOG".into(), "info".into()),
                // Playlists as a CDN in front of Rill gets them (README "Behind a CDN"): tests
                // that read playlist text see the packager's URIs, without a per-viewer `rs=`.
                // tests/analytics.rs turns it on to count players without CMCD.
                ("RILL_ANALYTICS_SESSION_PARAM".into(), "false".into()),
            ];
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            match Server::launch(dir.clone(), http, rtmp, env) {
                Ok(server) => return server,
                Err(log) if attempt < 3 && log.contains("Address already in use") => continue,
                Err(log) => panic!("rill did not become healthy:\n{log}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Like [`Server::start`], with `conf/rill.toml` in the server's working directory (keys it
    /// leaves out take their defaults).
    pub fn start_with_conf(mode: &str, conf: &str, extra: &[(&str, &str)]) -> Server {
        Server::start_in(mode, Some(conf), extra)
    }

    fn spawn(dir: PathBuf, http: u16, rtmp: u16, env: Vec<(String, String)>) -> Server {
        Server::launch(dir, http, rtmp, env).unwrap_or_else(|log| panic!("rill did not become healthy:\n{log}"))
    }

    /// Starts rill and waits until it is healthy; `Err(log)` if it exited first.
    fn launch(dir: PathBuf, http: u16, rtmp: u16, env: Vec<(String, String)>) -> Result<Server, String> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_rill"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().cloned())
            .current_dir(&dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rill starts");
        let srt = env
            .iter()
            .find(|(k, _)| k == "RILL_SRT_LISTEN")
            .and_then(|(_, v)| v.rsplit(':').next()?.parse().ok())
            .unwrap_or(8890);
        let webrtc_udp = env
            .iter()
            .find(|(k, _)| k == "RILL_WEBRTC_UDP_LISTEN")
            .and_then(|(_, v)| v.rsplit(':').next()?.parse().ok())
            .unwrap_or(8189);
        let mut server = Server { child, http, rtmp, srt, webrtc_udp, dir, env };
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.get("/healthz").0 != 200 {
            if Instant::now() >= deadline || server.child.try_wait().unwrap().is_some() {
                return Err(server.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }

    /// Stops and starts the server again with the same ports, data and settings.
    pub fn restart(mut self) -> Server {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (dir, http, rtmp, env) = (self.dir.clone(), self.http, self.rtmp, std::mem::take(&mut self.env));
        std::mem::forget(self);
        Server::spawn(dir, http, rtmp, env)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Resident memory of the server process in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap()
    }

    pub fn flv_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/live/{name}.flv", self.http)
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_request(self.http, "GET", path, None, None)
    }

    /// An authenticated API call; returns status and JSON (Null when the body is empty).
    pub fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, text) = http_request(self.http, method, path, body, Some(ADMIN_TOKEN));
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A stream's entry in `GET /api/v1/streams`.
    pub fn stream(&self, name: &str) -> Value {
        let (status, list) = self.api("GET", "/api/v1/streams", None);
        assert_eq!(status, 200);
        list["streams"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap_or(Value::Null)
    }

    pub fn metric(&self, line_prefix: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("metric {line_prefix} missing in:\n{text}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() || std::env::var_os("RILL_TEST_PRINT_LOG").is_some() {
            eprintln!("---- rill log ----\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A response as received, headers unparsed.
pub struct RawResponse {
    pub status: u16,
    /// Status line and headers, lower-cased.
    pub head: String,
    /// The body as sent (still chunk-framed when `transfer-encoding: chunked`).
    pub body: Vec<u8>,
    pub elapsed: Duration,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// Minimal HTTP/1.1 client (Connection: close).
pub fn http_raw(port: u16, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> RawResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http_send(port, method, path, body, &headers)
}

/// A GET with extra request headers.
pub fn http_raw_with(port: u16, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    http_send(port, "GET", path, None, headers)
}

/// Any method with extra request headers.
pub fn http_raw_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> RawResponse {
    http_send(port, method, path, body, headers)
}

fn http_send(port: u16, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> RawResponse {
    let start = Instant::now();
    let failed = RawResponse { status: 0, head: String::new(), body: Vec::new(), elapsed: Duration::ZERO };
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return failed };
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let body = body.unwrap_or("");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(request.as_bytes()).is_err() {
        return failed;
    }
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.get(split + 4..).unwrap_or_default().to_vec();
    RawResponse { status, head, body, elapsed: start.elapsed() }
}

/// Minimal HTTP/1.1 client (Connection: close): status and body text.
pub fn http_request(port: u16, method: &str, path: &str, body: Option<&str>, token: Option<&str>) -> (u16, String) {
    let r = http_raw(port, method, path, body, token);
    (r.status, r.text())
}

/// A peer process (publisher, player) that is killed and reaped when dropped, also when a
/// test panics.
pub struct Peer(Option<Child>);

impl Peer {
    pub fn new(child: Child) -> Peer {
        Peer(Some(child))
    }

    /// Waits for the process to exit by itself, killing it at `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Output {
        wait_with_timeout(self.0.take().expect("peer not yet waited for"), timeout)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// ffmpeg publishing a test pattern with AAC audio over RTMP for `seconds`.
pub fn publish(url: &str, seconds: u32, size: &str) -> Peer {
    publish_as(url, seconds, size, "flv")
}

/// ffmpeg publishing a 30 fps test pattern (H.264, keyframe every second) with 44.1 kHz AAC for
/// `seconds` to `url` in `container` (`flv` for RTMP, `mpegts` for SRT).
pub fn publish_as(url: &str, seconds: u32, size: &str, container: &str) -> Peer {
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size={size}:rate=30")])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-b:v", "1500k"])
        .args(["-c:a", "aac", "-b:a", "96k", "-t", &seconds.to_string(), "-f", container, url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg is installed (scripts/test.sh installs it)");
    Peer::new(child)
}

/// The H.264 profile an ffmpeg publisher encodes (x264 presets: `ultrafast` gives Constrained
/// Baseline, `veryfast` High, as OBS's default x264 settings do).
#[derive(Clone, Copy, Debug)]
pub enum Profile {
    Baseline,
    Main,
    High,
}

/// ffmpeg publishing a 30 fps test pattern over RTMP (keyframe every second) in `profile`,
/// with AAC audio at `sample_rate` Hz, for `seconds`.
pub fn publish_profile(url: &str, seconds: u32, size: &str, profile: Profile, sample_rate: u32) -> Peer {
    let x264: &[&str] = match profile {
        Profile::Baseline => &["-preset", "ultrafast"],
        Profile::Main => &["-preset", "veryfast", "-profile:v", "main"],
        Profile::High => &["-preset", "veryfast"],
    };
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", &format!("testsrc2=size={size}:rate=30")])
        .args(["-f", "lavfi", "-i", &format!("sine=frequency=440:sample_rate={sample_rate}")])
        .args(["-c:v", "libx264"])
        .args(x264)
        .args(["-tune", "zerolatency", "-g", "30", "-b:v", "1500k", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "96k", "-t", &seconds.to_string(), "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg is installed (scripts/test.sh installs it)");
    Peer::new(child)
}

/// What a decoder saw.
#[derive(Debug)]
pub struct Decoded {
    pub frames: usize,
    pub dimensions: Option<String>,
    pub elapsed: Duration,
    pub stderr: String,
}

/// Runs ffmpeg on `url` for up to `seconds` of media with the `-map` arguments given, writing
/// framemd5 (a `#` header, then one line per decoded frame: `stream, dts, pts, …`).
fn framemd5(url: &str, seconds: u32, maps: &[&str], timeout: Duration) -> (String, String) {
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url, "-t", &seconds.to_string()])
        .args(maps.iter().flat_map(|m| ["-map", m]))
        .args(["-f", "framemd5", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg is installed");
    let output = wait_with_timeout(child, timeout);
    (String::from_utf8_lossy(&output.stdout).to_string(), String::from_utf8_lossy(&output.stderr).to_string())
}

fn video_dimensions(framemd5: &str) -> Option<String> {
    framemd5.lines().find_map(|l| l.strip_prefix("#dimensions 0: ").map(String::from))
}

/// Decodes up to `seconds` of video from `url` with ffmpeg.
pub fn decode(url: &str, seconds: u32, timeout: Duration) -> Decoded {
    let start = Instant::now();
    let (stdout, stderr) = framemd5(url, seconds, &["0:v:0"], timeout);
    Decoded {
        frames: stdout.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count(),
        dimensions: video_dimensions(&stdout),
        elapsed: start.elapsed(),
        stderr,
    }
}

/// What a decoder saw of both tracks.
#[derive(Debug)]
pub struct DecodedAv {
    pub video_frames: usize,
    pub audio_frames: usize,
    pub dimensions: Option<String>,
    pub stderr: String,
}

/// Decodes up to `seconds` of video and audio from `url` with ffmpeg.
pub fn decode_av(url: &str, seconds: u32, timeout: Duration) -> DecodedAv {
    let (stdout, stderr) = framemd5(url, seconds, &["0:v:0", "0:a:0"], timeout);
    let count = |stream: &str| stdout.lines().filter(|l| l.split(',').next().map(str::trim) == Some(stream)).count();
    DecodedAv { video_frames: count("0"), audio_frames: count("1"), dimensions: video_dimensions(&stdout), stderr }
}

/// Waits for a child, killing it at `timeout`. Its piped stdout and stderr are drained while it
/// runs: a child blocked on a full pipe would otherwise never finish.
pub fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    Output { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// Polls `check` until it is true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check()
}

/// Runs a headless-Chromium probe from `tests/browser/` with node and parses the JSON line it
/// prints last.
pub fn browser_probe(script: &str, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Value {
    let child = Command::new("node")
        .arg(format!("{}/tests/browser/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is installed (scripts/test.sh installs it)");
    let output = wait_with_timeout(child, timeout);
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{script} output ({e}): {stdout}\n{}", String::from_utf8_lossy(&output.stderr)))
}

/// A fresh database on the test PostgreSQL cluster (`RILL_TEST_POSTGRES_URL`, started by
/// scripts/test.sh), dropped at the end. `None` (the test is skipped, and says so) when no
/// cluster is given, unless `RILL_REQUIRE_POSTGRES` is set.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    pub fn create(prefix: &str) -> Option<PostgresDatabase> {
        let Ok(admin_url) = std::env::var("RILL_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("RILL_REQUIRE_POSTGRES").is_err(),
                "RILL_REQUIRE_POSTGRES is set but RILL_TEST_POSTGRES_URL is not"
            );
            eprintln!("skipped: RILL_TEST_POSTGRES_URL unset (scripts/test.sh sets it)");
            return None;
        };
        let database = PostgresDatabase { admin_url, name: format!("{prefix}_{}", std::process::id()) };
        database.psql(&format!("DROP DATABASE IF EXISTS {}", database.name));
        database.psql(&format!("CREATE DATABASE {}", database.name));
        Some(database)
    }

    pub fn url(&self) -> String {
        let base = self.admin_url.rsplit_once('/').map_or(self.admin_url.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    /// Runs `sql` on the cluster's admin database; its output, one value per line.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql").args([self.admin_url.as_str(), "-v", "ON_ERROR_STOP=1", "-Atqc", sql]).output();
        let out = out.expect("psql is installed with postgresql");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The cluster's postmaster: the first line of `postmaster.pid` in its data directory
    /// (asked of the server itself, so any cluster the URL names works).
    pub fn postmaster_pid(&self) -> u32 {
        let data = self.psql("SHOW data_directory");
        let pid_file = std::fs::read_to_string(format!("{data}/postmaster.pid")).expect("postmaster.pid readable");
        pid_file.lines().next().and_then(|l| l.trim().parse().ok()).expect("a pid in postmaster.pid")
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([self.admin_url.as_str(), "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}
