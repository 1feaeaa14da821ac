//! End-to-end tests of recording and VOD with real peers: ffmpeg publishes over RTMP; the
//! recording becomes a catalog video that ffmpeg/ffprobe decode as HLS and DASH and headless
//! Chromium seeks in; live rewind while recording; `kill -9` mid-recording; a full disk;
//! hostile requests. Each holds [`common::serial`].

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(90);

/// A short grace period: the stream (and its recording) ends soon after the publisher leaves.
const GRACE: (&str, &str) = ("RILL_BUS_RECONNECT_GRACE_S", "2");

/// The video recorded from stream `name` (polls until the recorder has created it).
fn video_of(server: &Server, name: &str) -> Value {
    let mut found = Value::Null;
    let appeared = eventually(Duration::from_secs(20), || {
        let (status, page) = server.api("GET", &format!("/api/v1/videos?stream={name}"), None);
        found = page["videos"].get(0).cloned().unwrap_or(Value::Null);
        status == 200 && !found.is_null()
    });
    assert!(appeared, "no video for stream {name}:\n{}", server.log());
    found
}

fn video(server: &Server, id: &str) -> Value {
    let (status, video) = server.api("GET", &format!("/api/v1/videos/{id}"), None);
    assert_eq!(status, 200, "{video}");
    video
}

fn wait_until_ready(server: &Server, id: &str) -> Value {
    let mut last = Value::Null;
    let ready = eventually(Duration::from_secs(20), || {
        last = video(server, id);
        last["status"] != "recording"
    });
    assert!(ready && last["status"] == "ready", "video {id} not ready: {last}\n{}", server.log());
    last
}

/// `ffprobe`'s duration of `url` in seconds.
fn probe_duration(url: &str) -> f64 {
    let output = wait_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffprobe is installed"),
        T,
    );
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim().parse().unwrap_or_else(|_| panic!("ffprobe {url}: {text} {}", String::from_utf8_lossy(&output.stderr)))
}

/// Seconds of media in a live LL-HLS media playlist's window: complete segments plus the parts
/// of the segment being written.
fn live_seconds(playlist: &str) -> f64 {
    let mut complete = 0.0;
    let mut parts = 0.0;
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            complete += d.trim_end_matches(',').parse::<f64>().unwrap();
            parts = 0.0;
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART:") {
            let d = attrs.split(',').find_map(|a| a.strip_prefix("DURATION=")).unwrap();
            parts += d.parse::<f64>().unwrap();
        }
    }
    complete + parts
}

#[test]
fn a_live_stream_becomes_a_video_that_plays_rewinds_and_seeks() {
    let _serial = serial();
    let server = Server::start("open", &[GRACE]);
    let publisher = publish(&server.rtmp_url("show"), 20, "640x360");
    let started = Instant::now();
    let id = video_of(&server, "show")["id"].as_str().unwrap().to_string();
    let live = server.stream("show");
    assert_eq!(live["recording"]["video_id"], id.as_str(), "{live}");
    assert_eq!(live["recording"]["state"], "recording");

    // Live rewind: 8 s in, the EVENT playlist starts at the beginning of the stream.
    std::thread::sleep(Duration::from_secs(8).saturating_sub(started.elapsed()));
    let hls = format!("http://127.0.0.1:{}/vod/{id}/index.m3u8", server.http);
    let (status, playlist) = server.get(&format!("/vod/{id}/video/index.m3u8"));
    assert_eq!(status, 200, "{playlist}");
    assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:EVENT") && !playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    assert!(playlist.contains("\n0.m4s\n"), "the event playlist starts at the first segment:\n{playlist}");
    let rewind = Instant::now();
    let output = wait_with_timeout(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-live_start_index", "0", "-i", &hls])
            .args(["-map", "0:v:0", "-t", "4", "-f", "framemd5", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        T,
    );
    let framemd5 = String::from_utf8_lossy(&output.stdout);
    let frames: Vec<&str> = framemd5.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
    assert!(frames.len() >= 110, "rewound {} frames: {}", frames.len(), String::from_utf8_lossy(&output.stderr));
    // Read from the start, 4 s of media come at once; from the live edge they would take 4 s.
    assert!(rewind.elapsed() < Duration::from_secs(4), "rewind took {:?}: not from the start", rewind.elapsed());

    // The publisher stops; within seconds the video is ready and as long as what was pushed.
    let out = publisher.wait(T);
    assert!(out.status.success(), "publisher: {}", String::from_utf8_lossy(&out.stderr));
    let ready = wait_until_ready(&server, &id);
    let duration_ms = ready["duration_ms"].as_i64().unwrap();
    assert!((19_500..=20_500).contains(&duration_ms), "duration {duration_ms} ms: {ready}");
    assert!(ready["size_bytes"].as_i64().unwrap() > 1_000_000, "{ready}");
    assert!(ready["title"].as_str().unwrap().starts_with("show — "), "{ready}");
    assert_eq!(ready["tracks"][0]["width"], 640, "{ready}");
    assert_eq!(ready["tracks"][1]["codec"], "aac", "{ready}");

    // The thumbnail: the first picture, 320 pixels wide.
    let path = format!("/vod/{id}/thumbnail.jpg");
    let thumbnail = format!("http://127.0.0.1:{}{path}", server.http);
    assert_eq!(ready["thumbnail_url"], thumbnail.as_str(), "{ready}");
    let jpeg = http_raw_with(server.http, &path, &[]);
    assert_eq!(jpeg.status, 200);
    assert!(jpeg.head.contains("content-type: image/jpeg") && jpeg.body.starts_with(&[0xff, 0xd8]), "{}", jpeg.head);
    let probed = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0", &thumbnail])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probed.stdout).trim(), "320,180");

    let dash = format!("http://127.0.0.1:{}/vod/{id}/manifest.mpd", server.http);
    let (_, playlist) = server.get(&format!("/vod/{id}/video/index.m3u8"));
    assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let (_, mpd) = server.get(&format!("/vod/{id}/manifest.mpd"));
    assert!(mpd.contains("type=\"static\""), "{mpd}");
    for url in [&hls, &dash] {
        let seconds = probe_duration(url);
        assert!((19.5..=20.5).contains(&seconds), "ffprobe {url}: {seconds} s");
        let decoded = decode_av(url, 30, T);
        assert!(decoded.video_frames >= 590, "{url}: {} video frames: {}", decoded.video_frames, decoded.stderr);
        assert!(decoded.audio_frames >= 800, "{url}: {} audio frames: {}", decoded.audio_frames, decoded.stderr);
        assert_eq!(decoded.dimensions.as_deref(), Some("640x360"));
    }

    // Byte ranges of a segment.
    let path = format!("/vod/{id}/video/3.m4s");
    let whole = http_raw_with(server.http, &path, &[]);
    assert_eq!(whole.status, 200);
    assert!(whole.head.contains("cache-control: public, max-age=31536000, immutable"), "{}", whole.head);
    let size = whole.body.len();
    let part = http_raw_with(server.http, &path, &[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206, "{}", part.head);
    assert_eq!(part.body, whole.body[100..200]);
    assert!(part.head.contains(&format!("content-range: bytes 100-199/{size}")), "{}", part.head);
    let tail = http_raw_with(server.http, &path, &[("Range", "bytes=-10")]);
    assert_eq!(tail.body, whole.body[size - 10..]);
    let past = http_raw_with(server.http, &path, &[("Range", &format!("bytes={size}-"))]);
    assert_eq!(past.status, 416, "{}", past.head);
    assert!(past.head.contains(&format!("content-range: bytes */{size}")), "{}", past.head);

    // The watch page in Chromium: hls.js plays, the viewer seeks to 15 s and playback goes on.
    for mode in ["hls", "dash"] {
        let url = format!("http://127.0.0.1:{}/watch/{id}?mode={mode}", server.http);
        let result = browser_probe("watch.mjs", &[&url, "15", "45"], &[], T);
        assert_eq!(result["started"], true, "{mode}: {result}");
        assert!(result["resumedAfterMs"].is_number(), "{mode}: seek did not resume: {result}");
        let at = result["afterSeek"]["currentTime"].as_f64().unwrap();
        assert!((16.0..20.5).contains(&at), "{mode}: after seeking to 15 s the video is at {at}: {result}");
        assert_eq!(result["consoleErrors"].as_array().map(Vec::len), Some(0), "{mode}: {result}");
        assert_eq!(result["offOriginRequests"].as_array().map(Vec::len), Some(0), "{mode}: {result}");
    }
    assert!(server.metric("rill_recording_segments_total") >= 20.0);
    assert!(server.metric("rill_vod_bytes_out_total") > 1e6);
}

#[test]
fn kill_9_mid_recording_loses_at_most_the_fragment_in_flight() {
    let _serial = serial();
    let server = Server::start("open", &[GRACE]);
    let _publisher = publish(&server.rtmp_url("crash"), 60, "640x360");
    let id = video_of(&server, "crash")["id"].as_str().unwrap().to_string();
    let media = "/live/crash/video/media.m3u8";
    assert!(eventually(Duration::from_secs(20), || live_seconds(&server.get(media).1) >= 10.0));
    let pushed = live_seconds(&server.get(media).1);
    let server = server.restart(); // SIGKILL, then start again on the same data
    assert!(server.log().contains("recovered a recording"), "{}", server.log());
    let recovered = video(&server, &id);
    assert_eq!(recovered["status"], "ready", "{recovered}");
    let seconds = recovered["duration_ms"].as_f64().unwrap() / 1000.0;
    // Within one part of what was live when the server died (a part more may have been written).
    assert!((pushed - 0.5..=pushed + 0.5).contains(&seconds), "recovered {seconds} s of {pushed} s");
    let hls = format!("http://127.0.0.1:{}/vod/{id}/index.m3u8", server.http);
    let probed = probe_duration(&hls);
    assert!((seconds - 0.3..=seconds + 0.3).contains(&probed), "ffprobe {probed} s, catalog {seconds} s");
    let decoded = decode(&hls, 60, T);
    assert!(
        decoded.frames as f64 >= (seconds - 0.5) * 30.0,
        "{} frames of {seconds} s: {}",
        decoded.frames,
        decoded.stderr
    );
}

/// A small tmpfs mounted for the life of the test.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "rill-test-small-disk"])
            .arg(&path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root (scripts/test.sh runs as root in CI)");
        SmallDisk(path)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_recording_and_live_viewers_keep_watching() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("rill-small-disk-{}", std::process::id()));
    let disk = SmallDisk::mount(dir, "1m");
    let recordings = disk.0.display().to_string();
    let server = Server::start("open", &[GRACE, ("RILL_RECORD_PATH", &recordings)]);
    let _publisher = publish(&server.rtmp_url("full"), 25, "640x360");
    let id = video_of(&server, "full")["id"].as_str().unwrap().to_string();
    let viewer = std::thread::spawn({
        let url = server.flv_url("full");
        move || decode(&url, 15, T)
    });
    let mut failed = Value::Null;
    let gave_up = eventually(Duration::from_secs(20), || {
        failed = video(&server, &id);
        failed["status"] == "failed"
    });
    assert!(gave_up, "the recording did not fail: {failed}");
    let reason = failed["error"].as_str().unwrap_or_default();
    assert!(reason.contains("No space left on device"), "{failed}");
    let live = server.stream("full");
    assert_eq!(live["recording"]["state"], "failed", "{live}");
    assert!(live["recording"]["error"].as_str().unwrap().contains("No space left"), "{live}");
    assert!(server.metric("rill_recordings_total{outcome=\"failed\"}") >= 1.0);
    let watched = viewer.join().unwrap();
    assert!(watched.frames >= 420, "the live viewer decoded {} of 450 frames: {}", watched.frames, watched.stderr);
    assert!(server.log().contains("recording failed; the live stream goes on"));
}

#[test]
fn hostile_requests_get_clear_errors_and_private_videos_stay_private() {
    let _serial = serial();
    let server = Server::start("open", &[GRACE]);
    publish(&server.rtmp_url("tiny"), 6, "320x240").wait(T);
    let id = video_of(&server, "tiny")["id"].as_str().unwrap().to_string();
    wait_until_ready(&server, &id);
    let port = server.http;
    let anonymous = |method: &str, path: &str, body: Option<&str>| http_request(port, method, path, body, None);

    for path in [
        "/vod/..%2F..%2Fetc/index.m3u8".to_string(),
        "/vod/0123456789ab/index.m3u8".into(),
        "/vod/ABCDEFGHIJKL/index.m3u8".into(),
        format!("/vod/{id}/..%2Fvideo/0.m4s"),
        format!("/vod/{id}/video/..%2F..%2Frill.db"),
        format!("/vod/{id}/video/-1.m4s"),
        format!("/vod/{id}/video/99999.m4s"),
        format!("/vod/{id}/subtitles/index.m3u8"),
        format!("/vod/{id}/video/init-7.mp4"),
        "/watch/..%2F".into(),
        "/api/v1/videos/..%2F..%2Fdata".into(),
    ] {
        let (status, body) = anonymous("GET", &path, None);
        assert_eq!(status, 404, "{path}: {body}");
    }
    for q in ["%27%3B%20DROP%20TABLE%20videos%3B--", "%22", "*", "NEAR(", "%29%20OR%20(", "%5C"] {
        let (status, body) = anonymous("GET", &format!("/api/v1/videos?q={q}"), None);
        assert_eq!(status, 200, "q={q}: {body}");
    }
    let (status, body) = anonymous("GET", "/api/v1/videos?limit=abc", None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(server.api("GET", "/api/v1/videos", None).1["total"], 1, "nothing was dropped");

    // Edits need the token and valid values; huge bodies are refused before parsing.
    let path = format!("/api/v1/videos/{id}");
    assert_eq!(anonymous("PATCH", &path, Some(r#"{"title":"x"}"#)).0, 401);
    assert_eq!(anonymous("DELETE", &path, None).0, 401);
    let huge = format!(r#"{{"description":"{}"}}"#, "x".repeat(2 << 20));
    assert_eq!(server.api("PATCH", &path, Some(&huge)).0, 413);
    let long_title = format!(r#"{{"title":"{}"}}"#, "x".repeat(300));
    assert_eq!(server.api("PATCH", &path, Some(&long_title)).0, 400);
    assert_eq!(server.api("PATCH", &path, Some(r#"{"owner":"me"}"#)).0, 422);
    let (status, edited) = server.api(
        "PATCH",
        &path,
        Some(r#"{"title":"Kite festival","tags":["Outdoor","kites"],"visibility":"private"}"#),
    );
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["tags"], serde_json::json!(["outdoor", "kites"]));

    // Private: invisible without the token, playable with it; found by search with it.
    assert_eq!(anonymous("GET", &path, None).0, 404);
    assert_eq!(anonymous("GET", &format!("/vod/{id}/index.m3u8"), None).0, 404);
    let (_, listed) = anonymous("GET", "/api/v1/videos", None);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["total"], 0, "{listed}");
    let (status, found) = server.api("GET", "/api/v1/videos?q=kite", None);
    assert_eq!((status, found["total"].as_i64()), (200, Some(1)), "{found}");
    let authed = http_raw(port, "GET", &format!("/vod/{id}/index.m3u8"), None, Some(ADMIN_TOKEN));
    assert_eq!(authed.status, 200);

    // Delete removes the rows and the files.
    let files = server.dir.join("data/recordings").join(&id);
    assert!(files.exists());
    assert_eq!(server.api("DELETE", &path, None).0, 204);
    assert_eq!(server.api("GET", &path, None).0, 404);
    assert!(!files.exists(), "recording files left behind");
    assert_eq!(server.api("DELETE", &path, None).0, 404);
}

#[test]
fn the_catalog_on_postgresql_records_searches_and_survives_a_restart() {
    let _serial = serial();
    let Some(database) = PostgresDatabase::create("rill_e2e") else { return };
    let url = database.url();
    let server = Server::start("open", &[GRACE, ("RILL_DATABASE_URL", &url)]);
    publish(&server.rtmp_url("harbour"), 6, "320x240").wait(T);
    let id = video_of(&server, "harbour")["id"].as_str().unwrap().to_string();
    let ready = wait_until_ready(&server, &id);
    assert!((5_500..=6_500).contains(&ready["duration_ms"].as_i64().unwrap()), "{ready}");
    let (status, _) = server.api("PATCH", &format!("/api/v1/videos/{id}"), Some(r#"{"description":"Boats at dawn"}"#));
    assert_eq!(status, 200);
    let server = server.restart();
    let (_, found) = server.api("GET", "/api/v1/videos?q=boat", None);
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["videos"][0]["id"], id.as_str());
    let decoded = decode(&format!("http://127.0.0.1:{}/vod/{id}/index.m3u8", server.http), 30, T);
    assert!(decoded.frames >= 170, "{} frames: {}", decoded.frames, decoded.stderr);
}

#[test]
fn a_publisher_reconnecting_within_the_grace_period_continues_the_same_video() {
    let _serial = serial();
    let server = Server::start("open", &[("RILL_BUS_RECONNECT_GRACE_S", "6")]);
    let first = publish(&server.rtmp_url("relay"), 6, "320x240");
    let id = video_of(&server, "relay")["id"].as_str().unwrap().to_string();
    first.wait(T);
    std::thread::sleep(Duration::from_secs(2));
    publish(&server.rtmp_url("relay"), 6, "320x240").wait(T);
    let ready = wait_until_ready(&server, &id);
    let (_, page) = server.api("GET", "/api/v1/videos?stream=relay", None);
    assert_eq!(page["total"], 1, "one video for both sessions: {page}");
    let seconds = ready["duration_ms"].as_f64().unwrap() / 1000.0;
    assert!((11.0..=12.5).contains(&seconds), "both sessions recorded: {seconds} s");
    let decoded = decode(&format!("http://127.0.0.1:{}/vod/{id}/index.m3u8", server.http), 30, T);
    assert!(decoded.frames >= 330, "{} frames: {}", decoded.frames, decoded.stderr);
}
