//! Viewer analytics end to end (issue 14): Chromium plays the `/play` and `/watch` pages, whose
//! hls.js and dash.js report CMCD v2 to the collector, with and without network throttling;
//! ffmpeg, Chromium (WHEP) and ffmpeg again (LL-HLS without CMCD) watch one stream over every
//! protocol at once; the views rules through the collector; hostile reports and API filters;
//! (the known-answer scenario on PostgreSQL is analytics/tests/known_answer.rs). Each real-time test holds [`common::serial`].
//!
//! Run one file at a time: `cargo test --features e2e --test analytics -- --test-threads=1`.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The stream (and its recording) ends soon after its publisher leaves.
const GRACE: (&str, &str) = ("RILL_BUS_RECONNECT_GRACE_S", "2");
/// Players without CMCD are counted through the session parameter (on by default; the
/// other tests turn it off to read the packager's own playlists).
const SESSION_PARAM: (&str, &str) = ("RILL_ANALYTICS_SESSION_PARAM", "true");

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
    let server = Server::start("open", &[GRACE, SESSION_PARAM]);
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

/// `GET /api/v1/streams/<name>`'s `viewers_now`.
fn viewers_now(server: &Server, name: &str) -> Value {
    server.stream(name)["viewers_now"].clone()
}

#[test]
fn every_protocol_is_counted_live_and_the_timeline_keeps_the_peak() {
    let _serial = serial();
    let server = Server::start("open", &[GRACE, SESSION_PARAM]);
    let _live = encoder(&server.rtmp_url("mix"), 150, "flv", 48_000);
    wait_live(&server, "mix");
    let started = now_ms();
    let base = format!("http://127.0.0.1:{}", server.http);
    // 3 HTTP-FLV, 2 RTMP play, 1 SRT read, 2 LL-HLS without CMCD (ffmpeg), 1 WHEP (Chromium).
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(reader(&server.flv_url("mix")));
    }
    for _ in 0..2 {
        readers.push(reader(&format!("rtmp://127.0.0.1:{}/live/mix", server.rtmp)));
    }
    readers.push(reader(&format!("srt://127.0.0.1:{}?streamid=read:live/mix&mode=caller", server.srt)));
    for _ in 0..2 {
        readers.push(reader(&format!("{base}/live/mix/index.m3u8")));
    }
    let whep = std::thread::spawn(move || {
        browser_probe("webrtc.mjs", &[&base, "mix", "-", "40"], &[("PLAY_ENOUGH", "1000")], Duration::from_secs(90))
    });
    let want = serde_json::json!({"flv": 3, "rtmp": 2, "srt": 1, "webrtc": 1, "hls": 2, "dash": 0, "total": 9});
    let mut seen = Value::Null;
    let all_counted = eventually(Duration::from_secs(30), || {
        seen = viewers_now(&server, "mix");
        seen == want
    });
    assert!(all_counted, "viewers now {seen}, want {want}\n{}", server.log());
    // Exact from then on while they all watch (two 10 s samples of the timeline).
    let steady = Instant::now();
    while steady.elapsed() < Duration::from_secs(21) {
        let now = viewers_now(&server, "mix");
        assert_eq!(now, want, "the count wandered while nobody left\n{}", server.log());
        std::thread::sleep(Duration::from_millis(700));
    }
    drop(readers);
    let probe = whep.join().unwrap();
    // The browser has closed: everyone has left.
    let left = Instant::now();
    assert!(probe["final"]["webrtc"]["framesDecoded"].as_u64().unwrap_or(0) > 0, "WHEP played nothing: {probe}");
    let zero = eventually(Duration::from_secs(25), || viewers_now(&server, "mix")["total"] == 0);
    assert!(zero, "still counted after they left: {}", viewers_now(&server, "mix"));
    eprintln!("back to 0 viewers {:?} after they left", left.elapsed());
    // 20 s is the goal (WHEP: 12 s of peer silence, polled every 2 s); a loaded machine gets 5 s more.
    assert!(left.elapsed() <= Duration::from_secs(25), "back to 0 in {:?}", left.elapsed());

    // The report's timeline keeps the peak, and each protocol's sessions.
    let mut report = Value::Null;
    let reported = eventually(Duration::from_secs(15), || {
        report = server.api("GET", "/api/v1/streams/mix/analytics?period=1h", None).1;
        report["peak_viewers"] == 9 && report["sessions"].as_u64() >= Some(9)
    });
    assert!(reported, "{report}");
    let timeline = report["timeline"].as_array().unwrap();
    assert!(timeline.iter().any(|p| p["viewers"] == 9), "no point at the peak: {report}");
    let by: std::collections::HashMap<String, u64> = report["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["key"].as_str().unwrap_or("?").to_owned(), b["sessions"].as_u64().unwrap_or(0)))
        .collect();
    for (protocol, n) in [("flv", 3), ("rtmp", 2), ("srt", 1), ("webrtc", 1), ("hls", 2)] {
        assert_eq!(by.get(protocol).copied(), Some(n), "{protocol} sessions in {report}");
    }
    // Ends are written in the next batch (1 s) after a session is seen to end.
    let mut odd = Vec::new();
    let settled = eventually(Duration::from_secs(5), || {
        let stored = sessions(&server, "stream=mix");
        odd = stored
            .into_iter()
            .filter(|s| s["started_at"].as_i64().unwrap() < started || s["ended_at"].is_null())
            .collect();
        odd.is_empty()
    });
    assert!(settled, "started before {started} or not ended: {odd:?}");
}

/// One player's CMCD v2 event report: `(ms after the first, state)` lines for session `sid`.
fn event_lines(sid: &str, content: &str, states: &[(i64, &str)]) -> String {
    let t0 = now_ms() - states.last().map_or(0, |s| s.0);
    states
        .iter()
        .map(|(at, sta)| format!("e=ps,sid=\"{sid}\",cid=\"{content}\",sf=h,sta={sta},ts={},v=2", t0 + at))
        .collect::<Vec<_>>()
        .join("\n")
}

fn collect(server: &Server, body: &str, visitor: &str) -> RawResponse {
    let cookie = format!("rill_viewer={visitor}");
    http_raw_request(
        server.http,
        "POST",
        "/analytics/cmcd",
        Some(body),
        &[("Content-Type", "application/cmcd"), ("Cookie", &cookie)],
    )
}

#[test]
fn views_follow_the_rules_a_short_visit_none_a_reload_one() {
    let _serial = serial();
    let server = Server::start("open", &[SESSION_PARAM]);
    // X watches 5 s: not a view. Y watches 15 s, reloads, watches 15 s again: one view.
    let visits = [("x-visit-0001", "visitorx0001", 5_000), ("y-visit-0001", "visitory0001", 15_000)];
    for (sid, visitor, ms) in visits {
        let lines = event_lines(sid, "live/rules", &[(0, "s"), (800, "p"), (800 + ms, "q")]);
        assert_eq!(collect(&server, &lines, visitor).status, 204);
    }
    let lines = event_lines("y-visit-0002", "live/rules", &[(0, "s"), (600, "p"), (15_600, "q")]);
    assert_eq!(collect(&server, &lines, "visitory0001").status, 204);
    let mut report = Value::Null;
    let written = eventually(Duration::from_secs(10), || {
        report = server.api("GET", "/api/v1/streams/rules/analytics?period=1h", None).1;
        report["sessions"] == 3
    });
    assert!(written, "{report}\n{}", server.log());
    assert_eq!(report["views"], 1, "{report}");
    assert_eq!(report["unique_viewers"], 1, "{report}");
    let stored = sessions(&server, "stream=rules");
    let playing = |sid: &str| stored.iter().find(|s| s["id"] == sid).map(|s| s["playing_ms"].as_i64().unwrap());
    assert_eq!(playing("x-visit-0001"), Some(5_000), "{stored:#?}");
    assert_eq!(playing("y-visit-0002"), Some(15_000), "{stored:#?}");
    let view = |sid: &str| stored.iter().find(|s| s["id"] == sid).map(|s| s["view_at"].is_number());
    assert_eq!(view("x-visit-0001"), Some(false), "5 s is not a view");
    assert_eq!(view("y-visit-0001"), Some(true), "15 s is a view");
}

#[test]
fn hostile_reports_get_clear_errors_and_disturb_nobody() {
    let _serial = serial();
    let server = Server::start("open", &[GRACE, SESSION_PARAM]);
    let _live = encoder(&server.rtmp_url("calm"), 60, "flv", 44_100);
    wait_live(&server, "calm");
    // A real viewer watching throughout.
    let viewer = std::thread::spawn({
        let url = server.flv_url("calm");
        move || decode(&url, 25, Duration::from_secs(60))
    });
    let rejected = || server.metric("rill_analytics_rejected_lines_total");
    let before = rejected();
    let rss_before = server.rss_kib();

    // Garbage, an oversized line, a 10 KB sid: skipped and counted; the good line is taken.
    let good = event_lines("good-sid-0001", "live/calm", &[(0, "s"), (500, "p")]);
    let long_sid = "s".repeat(10_240);
    let body = format!(
        "not a dictionary\n=,,=\ne=ps,sid=\"{long_sid}\",sta=p\nsid=\"x\",{}\n\u{0}\u{1}\u{2}\n{good}",
        "a=1,".repeat(2_000)
    );
    let r = collect(&server, &body, "visitorh0001");
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(rejected() >= before + 5.0, "rejected lines counted: {}", rejected());
    assert!(eventually(Duration::from_secs(5), || viewers_now(&server, "calm")["total"].as_u64() >= Some(1)));
    // Not CMCD: 415 saying what to send. Over the body limit: 413.
    let r = http_raw_request(server.http, "POST", "/analytics/cmcd", Some("{}"), &[("Content-Type", "text/html")]);
    assert_eq!(r.status, 415, "{}", r.text());
    assert!(r.text().contains("application/cmcd"), "{}", r.text());
    let flood: String = (0..100_000).map(|i| format!("e=t,sid=\"flood-{i:06}\",sta=p,v=2\n")).collect();
    let r = collect(&server, &flood, "visitorf0001");
    assert_eq!(r.status, 413, "{}", r.text());
    // The same 100k lines in allowed sizes, as fast as possible: the rate limit answers 429
    // (the players retry later), nothing else breaks, memory stays bounded.
    let chunks: Vec<&str> = flood.as_bytes().chunks(200_000).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..3 {
        for chunk in &chunks {
            let chunk = &chunk[..chunk.rfind('\n').unwrap_or(0)];
            *statuses.entry(collect(&server, chunk, "visitorf0001").status).or_insert(0) += 1;
        }
    }
    eprintln!("flood answers: {statuses:?}");
    assert!(statuses.keys().all(|s| [204, 410, 429].contains(s)), "{statuses:?}");
    for _ in 0..150 {
        collect(&server, "e=t,sid=\"burst-0001\",v=2", "visitorb0001");
    }
    assert!(server.metric("rill_analytics_rate_limited_total") >= 1.0, "no client was rate limited");
    assert!(server.metric("rill_analytics_refused_sessions_total") >= 1.0, "100k invented sessions were all taken");
    let rss_after = server.rss_kib();
    eprintln!("RSS {rss_before} KiB → {rss_after} KiB");
    assert!(rss_after < rss_before + 200 * 1024, "memory grew from {rss_before} to {rss_after} KiB");

    // Bad API filters: 400 with the reason.
    for bad in ["period=forever", "limit=-3", "protocol=carrier-pigeon", "since=yesterday"] {
        let (status, body) = server.api("GET", &format!("/api/v1/analytics/sessions?{bad}"), None);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{bad}: {body}");
    }
    let (status, body) = server.api("GET", "/api/v1/videos/..%2Fetc/analytics", None);
    assert!(status == 400 || status == 404, "{status} {body}");

    // The viewer watched on, undisturbed.
    let watched = viewer.join().unwrap();
    assert!(watched.frames >= 25 * 30 * 9 / 10, "the viewer decoded {} frames: {}", watched.frames, watched.stderr);
    assert_eq!(server.get("/healthz").0, 200);
    // The recording went on beside the flood (the analytics writer never held the catalog
    // long enough to stall it).
    assert!(!server.log().contains("recording failed"), "{}", server.log());
}
