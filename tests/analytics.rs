//! Viewer analytics end to end (issue 14): Chromium plays the `/play` and `/watch` pages, whose
//! hls.js and dash.js report CMCD v2 to the collector, with and without network throttling;
//! ffmpeg, Chromium (WHEP) and ffmpeg again (LL-HLS without CMCD) watch one stream over every
//! protocol at once; the views rules through the collector; hostile reports and API filters;
//! the known-answer scenario on PostgreSQL. Each real-time test holds [`common::serial`].
//!
//! Run one file at a time: `cargo test --features e2e --test analytics -- --test-threads=1`.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The stream (and its recording) ends soon after its publisher leaves.
const GRACE: (&str, &str) = ("RILL_BUS_RECONNECT_GRACE_S", "2");

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// ffmpeg publishing like a live encoder: x264 `veryfast` High profile, 2 s GOP, 1 Mbit/s
/// CBR-ish, AAC at `sample_rate`, for `seconds` in real time to `url` in `container`.
fn encoder(url: &str, seconds: u32, container: &str, sample_rate: u32) -> Peer {
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", &format!("sine=frequency=440:sample_rate={sample_rate}")])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p"])
        .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
        .args(["-b:v", "1000k", "-maxrate", "1000k", "-bufsize", "2000k"])
        .args(["-c:a", "aac", "-ar", &sample_rate.to_string(), "-b:a", "128k"])
        .args(["-t", &seconds.to_string(), "-f", container, url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg is installed");
    Peer::new(child)
}

#[allow(dead_code)] // the mixed-concurrency test (not yet written) uses it
/// ffmpeg reading `url` (any protocol it speaks) and throwing the packets away, like a player.
fn reader(url: &str) -> Peer {
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url])
        .args(["-map", "0", "-c", "copy", "-f", "null", "-"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg is installed");
    Peer::new(child)
}

fn wait_live(server: &Server, name: &str) {
    let live = eventually(Duration::from_secs(20), || {
        let s = server.stream(name);
        s["state"] == "live" && !s["video"].is_null() && !s["audio"].is_null()
    });
    assert!(live, "{name} never went live:\n{}", server.log());
}

/// The id of the video recorded from stream `name`.
fn recording_of(server: &Server, name: &str) -> String {
    let mut id = None;
    let found = eventually(Duration::from_secs(20), || {
        let (_, page) = server.api("GET", &format!("/api/v1/videos?stream={name}"), None);
        id = page["videos"][0]["id"].as_str().map(String::from);
        id.is_some()
    });
    assert!(found, "no recording of {name}:\n{}", server.log());
    id.unwrap()
}

fn wait_ready(server: &Server, id: &str) -> Value {
    let mut video = Value::Null;
    let ready = eventually(Duration::from_secs(30), || {
        video = server.api("GET", &format!("/api/v1/videos/{id}"), None).1;
        video["status"] == "ready"
    });
    assert!(ready, "video {id} not ready: {video}\n{}", server.log());
    video
}

/// `GET /api/v1/analytics/sessions?<filter>` (one page of up to 500, newest first).
fn sessions(server: &Server, filter: &str) -> Vec<Value> {
    let (status, page) = server.api("GET", &format!("/api/v1/analytics/sessions?{filter}&limit=500"), None);
    assert_eq!(status, 200, "{filter}: {page}");
    page["sessions"].as_array().cloned().unwrap_or_default()
}

/// The stored session `sid` once it has ended (a session is written while it runs and when it
/// ends: the quit report of the closing page ends it at once, silence after 15–45 s).
fn ended_session(server: &Server, filter: &str, sid: &str, timeout: Duration) -> Value {
    let mut found = Value::Null;
    let ended = eventually(timeout, || {
        found = sessions(server, filter).into_iter().find(|s| s["id"] == sid).unwrap_or(Value::Null);
        !found["ended_at"].is_null()
    });
    assert!(ended, "session {sid} ({filter}) did not end within {timeout:?}: {found}\n{}", server.log());
    found
}

/// Chromium on a page for `seconds` of playing (tests/browser/analytics.mjs).
fn watch(url: &str, seconds: u32, env: &[(&str, &str)]) -> Value {
    let timeout = seconds as u64 * 3 + 30;
    browser_probe(
        "analytics.mjs",
        &[url, &seconds.to_string(), &timeout.to_string()],
        env,
        Duration::from_secs(timeout + 20),
    )
}

/// What the page saw and what Rill stored of its session.
struct Watched {
    probe: Value,
    session: Value,
}

impl Watched {
    fn played_ms(&self) -> i64 {
        self.probe["playedMs"].as_i64().unwrap()
    }
    fn stalls(&self) -> u64 {
        self.probe["stalls"].as_u64().unwrap()
    }
    fn int(&self, key: &str) -> i64 {
        self.session[key].as_i64().unwrap_or_else(|| panic!("{key} in {}", self.session))
    }
}

impl std::fmt::Display for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "page: {}\nsession: {}", self.probe, self.session)
    }
}

/// Chromium watches `page` (a `/play` or `/watch` URL path) for `seconds`; the page's CMCD
/// session must be the only session of `filter` that started meanwhile.
fn watch_one_session(server: &Server, page: &str, filter: &str, seconds: u32, env: &[(&str, &str)]) -> Watched {
    let started = now_ms();
    let probe = watch(&format!("http://127.0.0.1:{}{page}", server.http), seconds, env);
    let left = Instant::now();
    let sid = probe["sid"].as_str().unwrap_or_else(|| panic!("no CMCD session on {page}: {probe}")).to_owned();
    assert!(probe["firstPlayingMs"].is_number(), "{page} never played: {probe}\n{}", server.log());
    assert_eq!(probe["consoleErrors"].as_array().map(Vec::len), Some(0), "{page}: {probe}");
    // The page reports its end when it closes: the session ends within seconds, not after
    // the 45 s a silent player is given.
    let session = ended_session(server, filter, &sid, Duration::from_secs(15));
    eprintln!("{page}: session ended {:?} after the page closed", left.elapsed());
    let during: Vec<Value> =
        sessions(server, filter).into_iter().filter(|s| s["started_at"].as_i64().unwrap() >= started).collect();
    assert_eq!(during.len(), 1, "{page}: one session per player, not {during:#?}");
    Watched { probe, session }
}

#[test]
fn chromium_players_are_counted_with_their_watch_time_startup_and_stalls() {
    let _serial = serial();
    let server = Server::start("open", &[GRACE]);
    // A live stream to play, and a short one whose recording is the video to watch.
    let _live = encoder(&server.rtmp_url("show"), 110, "flv", 48_000);
    let recorded = encoder(&server.rtmp_url("rec"), 26, "flv", 44_100);
    wait_live(&server, "show");
    let video = recording_of(&server, "rec");

    // hls.js on /play: 30 s of playing.
    let hls = watch_one_session(&server, "/play/show", "stream=show", 30, &[]);
    eprintln!("hls.js, /play: {hls}");
    assert_eq!(hls.session["protocol"], "hls", "{hls}");
    assert_eq!(hls.session["video"], recording_of(&server, "show").as_str(), "live views count toward the recording");
    assert!((hls.int("playing_ms") - hls.played_ms()).abs() <= 3_000, "watch time: {hls}");
    assert!((27_000..=33_000).contains(&hls.int("playing_ms")), "{hls}");
    assert!(hls.int("startup_ms") > 0, "{hls}");
    assert_eq!(hls.session["outcome"], "played", "{hls}");
    assert!(hls.session["view_at"].is_number(), "30 s is a view: {hls}");
    // The stalls the browser lived through, no more (on loopback none, unless the machine is
    // so loaded that the player really ran dry: then exactly those).
    assert_eq!(hls.int("rebuffer_count") as u64, hls.stalls(), "{hls}");

    // dash.js on /watch: 20 s of the recorded video.
    let out = recorded.wait(Duration::from_secs(40));
    assert!(out.status.success(), "the recording's publisher failed");
    let meta = wait_ready(&server, &video);
    assert!(meta["duration_ms"].as_i64().unwrap() >= 25_000, "{meta}");
    let filter = format!("video={video}");
    let dash = watch_one_session(&server, &format!("/watch/{video}?mode=dash"), &filter, 20, &[]);
    eprintln!("dash.js, /watch: {dash}");
    assert_eq!(dash.session["protocol"], "dash", "{dash}");
    assert!(dash.session["stream"].is_null(), "{dash}");
    assert!((dash.int("playing_ms") - dash.played_ms()).abs() <= 3_000, "watch time: {dash}");
    assert!((17_000..=23_000).contains(&dash.int("playing_ms")), "{dash}");
    assert!(dash.int("startup_ms") > 0, "{dash}");
    assert_eq!(dash.int("rebuffer_count") as u64, dash.stalls(), "{dash}");
    // The video's report has it: one view of ~20 s, and the first fifth of the video watched.
    let (_, report) = server.api("GET", &format!("/api/v1/videos/{video}/analytics?period=1d"), None);
    assert_eq!(report["summary"]["views"], 1, "{report}");
    assert_eq!(report["summary"]["sessions"], 1, "{report}");
    assert_eq!(report["retention"][5]["share"], 1.0, "{report}");

    // Throttled mid-play (300 kbit/s for a stream of 1.1 Mbit/s): hls.js runs dry, then recovers.
    let throttle = [("THROTTLE_KBPS", "300"), ("THROTTLE_AT", "4"), ("THROTTLE_FOR", "6")];
    let slow = watch_one_session(&server, "/play/show", "stream=show", 12, &throttle);
    eprintln!("hls.js throttled: {slow}");
    assert!(slow.stalls() >= 1, "throttling did not stall the player: {slow}");
    assert!(slow.int("rebuffer_count") >= 1, "{slow}");
    assert!(slow.int("rebuffer_ms") > 0, "a rebuffer ratio > 0: {slow}");
    assert!((slow.int("playing_ms") - slow.played_ms()).abs() <= 3_000, "watch time: {slow}");

    // Throttled from the start (700 kbit/s): dash.js starts, then stalls.
    let throttle = [("THROTTLE_KBPS", "700"), ("THROTTLE_AT", "0")];
    let slow = watch_one_session(&server, &format!("/watch/{video}?mode=dash"), &filter, 10, &throttle);
    eprintln!("dash.js throttled: {slow}");
    assert!(slow.stalls() >= 1, "throttling did not stall the player: {slow}");
    assert!(slow.int("rebuffer_count") >= 1, "{slow}");
    assert!(slow.int("rebuffer_ms") > 0, "{slow}");

    // The reports carry the stalls: a rebuffer ratio > 0 for the stream and the video.
    let (_, stream) = server.api("GET", "/api/v1/streams/show/analytics?period=1h", None);
    assert!(stream["qoe"]["rebuffer_ratio"].as_f64().unwrap() > 0.0, "{stream}");
    assert_eq!(stream["sessions"], 2, "{stream}");
    let (_, report) = server.api("GET", &format!("/api/v1/videos/{video}/analytics?period=1d"), None);
    assert!(report["qoe"]["rebuffer_ratio"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["qoe"]["rebuffer_count"].as_u64().unwrap() >= 1, "{report}");
    assert!(server.metric("rill_qoe_rebuffer_ratio_count{protocol=\"hls\"}") >= 2.0);
}
