//! Uploads end to end: a real tus client (tuspy, `tests/tus_client.py`) uploads an MP4 made
//! by ffmpeg to the real server, cut off half-way and resumed; the upload limit and hostile
//! metadata; processing into a video (probe, refusals with reasons, the ladder as CMAF).

mod common;

use common::{eventually, http_raw_request, serial, wait_with_timeout, Server, ADMIN_TOKEN};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Python with tuspy: the venv scripts/deps.sh makes.
fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.pyenv/bin/python3");
    assert!(venv.exists(), "{} is missing: run scripts/deps.sh test", venv.display());
    venv
}

/// A `seconds`-long `size` H.264 + AAC MP4 (2 s GOPs, `moov` first) made by ffmpeg.
fn make_mp4(dir: &Path, name: &str, seconds: u32, size: &str) -> PathBuf {
    make_media(dir, name, seconds, Some(size), &["-movflags", "+faststart"])
}

/// A `seconds`-long file made by ffmpeg: `size` H.264 video (none without) and AAC audio.
fn make_media(dir: &Path, name: &str, seconds: u32, size: Option<&str>, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-loglevel", "error", "-y"]);
    if let Some(size) = size {
        command.args(["-f", "lavfi", "-i"]).arg(format!("testsrc2=size={size}:rate=30:duration={seconds}"));
    }
    command.args(["-f", "lavfi", "-i"]).arg(format!("sine=frequency=440:sample_rate=48000:duration={seconds}"));
    if size.is_some() {
        command.args(["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-g", "60", "-pix_fmt", "yuv420p"]);
    }
    let status = command
        .args(["-c:a", "aac", "-b:a", "128k", "-shortest"])
        .args(extra)
        .arg(&path)
        .output()
        .expect("ffmpeg runs");
    assert!(status.status.success(), "ffmpeg made {name}: {}", String::from_utf8_lossy(&status.stderr));
    path
}

/// `ffprobe … -of json` of `url`.
fn ffprobe(url: &str, args: &[&str]) -> Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(url)
        .output()
        .expect("ffprobe runs");
    assert!(output.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("ffprobe prints JSON")
}

/// Waits until the upload is processed; its final JSON.
fn processed(server: &Server, id: &str) -> Value {
    let mut last = Value::Null;
    let done = eventually(Duration::from_secs(300), || {
        last = upload_json(server, id);
        matches!(last["state"].as_str(), Some("ready" | "failed"))
    });
    assert!(done, "the upload was not processed in time: {last}");
    last
}

fn sha1_hex(path: &Path) -> String {
    let out = Command::new("sha1sum").arg(path).output().expect("sha1sum runs");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned()
}

/// Uploads `file` with tuspy; returns the client's JSON (`url`, `resumed_from`).
fn tus_upload(server: &Server, file: &Path, meta: &[&str], cut: Option<f64>) -> Value {
    let mut command = Command::new(python());
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tus_client.py"))
        .arg(format!("http://127.0.0.1:{}/api/v1/uploads", server.http))
        .arg(ADMIN_TOKEN)
        .arg(file)
        .args(["--chunk", &(512 * 1024).to_string()]);
    for m in meta {
        command.args(["--meta", m]);
    }
    if let Some(cut) = cut {
        command.args(["--cut", &cut.to_string()]);
    }
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("python runs");
    let output = wait_with_timeout(child, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "tus client failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).expect("the client prints JSON")
}

fn upload_id(client: &Value) -> String {
    client["url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

fn upload_json(server: &Server, id: &str) -> Value {
    let (status, json) = server.api("GET", &format!("/api/v1/uploads/{id}"), None);
    assert_eq!(status, 200, "{json}");
    json
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn an_upload_cut_half_way_resumes_and_arrives_whole() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let source = make_mp4(&server.dir, "source.mp4", 12, "1920x1080");
    let size = std::fs::metadata(&source).unwrap().len();
    let client = tus_upload(
        &server,
        &source,
        &["title=Harbour at dusk", "tags=sea boats", "visibility=unlisted", "filename=harbour.mp4"],
        Some(0.5),
    );
    let resumed_from = client["resumed_from"].as_u64().unwrap();
    assert_eq!(resumed_from, size / 2, "the server kept every byte before the cut ({size} bytes in all)");
    let id = upload_id(&client);
    let upload = upload_json(&server, &id);
    assert_eq!(upload["length"], size);
    assert_eq!(upload["offset"], size);
    assert_eq!(upload["sha1"], sha1_hex(&source), "the file arrived whole: {upload}");
    assert_eq!(upload["title"], "Harbour at dusk");
    assert_eq!(upload["filename"], "harbour.mp4");
    assert!(matches!(upload["state"].as_str(), Some("processing" | "ready")), "{upload}");
    // Writing to a complete upload is refused; HEAD still tells its offset.
    let path = format!("/api/v1/uploads/{id}");
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let head =
        http_raw_request(server.http, "HEAD", &path, None, &[("Authorization", &auth), ("Tus-Resumable", "1.0.0")]);
    assert_eq!((head.status, head.header("upload-offset")), (200, Some(size.to_string().as_str())));

    // Processing: the ladder up to the source's 1080p, as CMAF served like a recording.
    let upload = processed(&server, &id);
    assert_eq!((upload["state"].as_str(), upload["progress"].as_f64()), (Some("ready"), Some(100.0)), "{upload}");
    let video_id = upload["video_id"].as_str().unwrap().to_owned();
    let (status, list) = server.api("GET", "/api/v1/videos", None);
    assert_eq!(status, 200);
    let listed = list["videos"].as_array().unwrap().iter().find(|v| v["id"] == video_id).cloned();
    let listed = listed.unwrap_or_else(|| panic!("video {video_id} listed: {list}"));
    assert_eq!((listed["source"].as_str(), listed["status"].as_str()), (Some("upload"), Some("ready")), "{listed}");
    assert_eq!(listed["title"], "Harbour at dusk");
    assert_eq!(listed["visibility"], "unlisted");
    let (status, _) = server.get(&format!("/vod/{video_id}/thumbnail.jpg"));
    assert_eq!(status, 200, "a poster is made: {listed}");
    let source_duration: f64 = ffprobe(source.to_str().unwrap(), &["-show_entries", "format=duration"])["format"]
        ["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((listed["duration_ms"].as_f64().unwrap() / 1000.0 - source_duration).abs() <= 0.1, "{listed}");
    let base = format!("http://127.0.0.1:{}/vod/{video_id}", server.http);
    let (status, master) = server.get(&format!("/vod/{video_id}/index.m3u8"));
    assert_eq!(status, 200, "{master}");
    let mut keyframes: Vec<(String, Vec<String>)> = Vec::new();
    for (track, width, height) in
        [("video", 1920, 1080), ("video-720p", 1280, 720), ("video-480p", 854, 480), ("video-360p", 640, 360)]
    {
        assert!(master.contains(&format!("{track}/index.m3u8")), "{track} in the multivariant playlist:\n{master}");
        let url = format!("{base}/{track}/index.m3u8");
        let fields = "stream=width,height,codec_name,nb_read_frames:format=duration";
        let probe = ffprobe(&url, &["-count_frames", "-show_entries", fields]);
        let stream = &probe["streams"][0];
        let shape = (stream["codec_name"].as_str(), stream["width"].as_u64(), stream["height"].as_u64());
        assert_eq!(shape, (Some("h264"), Some(width), Some(height)), "{track}: {probe}");
        let frames: f64 = stream["nb_read_frames"].as_str().unwrap().parse().unwrap();
        assert!((frames / 30.0 - source_duration).abs() <= 0.1, "{track}: {frames} frames for {source_duration} s");
        let duration: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
        assert!((duration - source_duration).abs() <= 0.1, "{track}: {duration} s, source {source_duration} s");
        let keys =
            ffprobe(&url, &["-skip_frame", "nokey", "-select_streams", "v:0", "-show_entries", "frame=pts_time"]);
        let times: Vec<String> = keys["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["pts_time"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(times.len() >= 5, "{track}: keyframes every 2 s: {times:?}");
        keyframes.push((track.to_owned(), times));
    }
    for (track, times) in &keyframes[1..] {
        assert_eq!(times, &keyframes[0].1, "{track}'s keyframes are the top rendition's");
    }
    let audio = ffprobe(&format!("{base}/audio/index.m3u8"), &["-show_entries", "stream=codec_name"]);
    assert_eq!(audio["streams"][0]["codec_name"], "aac", "{audio}");
    let (status, mpd) = server.get(&format!("/vod/{video_id}/manifest.mpd"));
    assert_eq!(status, 200);
    assert_eq!(mpd.matches("<Representation id=\"video").count(), 4, "{mpd}");
    assert!(!server.dir.join("data/uploads").join(&id).exists(), "the uploaded file is removed once processed");
}

#[test]
fn files_that_cannot_be_played_fail_with_reasons() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    // moov at the end, cut in half: the index is gone.
    let whole = make_media(&server.dir, "whole.mp4", 4, Some("320x240"), &[]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = server.dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // moov first, cut at 60%: it declares 8 s but its media stops early.
    let fast = make_mp4(&server.dir, "fast.mp4", 8, "320x240");
    let bytes = std::fs::read(&fast).unwrap();
    let short = server.dir.join("short.mp4");
    std::fs::write(&short, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let sound = make_media(&server.dir, "sound.m4a", 3, None, &[]);
    let noise = server.dir.join("noise.mp4");
    let random: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&noise, random).unwrap();
    let cases = [
        (&cut, "the file is truncated or corrupt"),
        (&short, "the file is truncated"),
        (&sound, "the file has no video stream"),
        (&noise, "the file is truncated or corrupt"),
    ];
    let ids: Vec<String> = cases.iter().map(|(file, _)| upload_id(&tus_upload(&server, file, &[], None))).collect();
    for ((file, reason), id) in cases.iter().zip(&ids) {
        let upload = processed(&server, id);
        assert_eq!(upload["state"], "failed", "{}: {upload}", file.display());
        let error = upload["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(reason), "{}: {error:?} should start with {reason:?}", file.display());
        let path = format!("/api/v1/videos/{}", upload["video_id"].as_str().unwrap());
        let (status, video) = server.api("GET", &path, None);
        assert_eq!((status, video["status"].as_str(), video["error"].as_str()), (200, Some("failed"), Some(error)));
        assert_eq!(video["source"], "upload");
    }
}

#[test]
fn limits_versions_and_tokens_are_enforced_before_storing_anything() {
    let _serial = serial();
    let server = Server::start("keys", &[("RILL_VOD_MAX_UPLOAD_GB", "1")]);
    let uploads_dir = server.dir.join("data/uploads");
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let tus = [("Authorization", auth.as_str()), ("Tus-Resumable", "1.0.0")];
    // A 5 GB upload over a 1 GB limit: 413, nothing stored.
    let mut headers = tus.to_vec();
    headers.push(("Upload-Length", "5000000000"));
    let refused = http_raw_request(server.http, "POST", "/api/v1/uploads", None, &headers);
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert!(refused.text().contains("over the limit"), "{}", refused.text());
    assert!(files_under(&uploads_dir).is_empty(), "nothing stored: {:?}", files_under(&uploads_dir));
    // Discovery is open; the limit is announced.
    let options = http_raw_request(server.http, "OPTIONS", "/api/v1/uploads", None, &[]);
    assert_eq!(options.status, 204);
    assert_eq!(options.header("tus-version"), Some("1.0.0"));
    assert_eq!(options.header("tus-max-size"), Some("1000000000"));
    assert!(options.header("tus-extension").unwrap().contains("checksum"));
    // No token, a wrong version.
    let anonymous = http_raw_request(
        server.http,
        "POST",
        "/api/v1/uploads",
        None,
        &[("Tus-Resumable", "1.0.0"), ("Upload-Length", "10")],
    );
    assert_eq!(anonymous.status, 401);
    let old = http_raw_request(
        server.http,
        "POST",
        "/api/v1/uploads",
        None,
        &[("Authorization", auth.as_str()), ("Tus-Resumable", "0.2.2"), ("Upload-Length", "10")],
    );
    assert_eq!((old.status, old.header("tus-resumable")), (412, Some("1.0.0")));
    assert!(files_under(&uploads_dir).is_empty());
    // Termination removes what was stored.
    let mut headers = tus.to_vec();
    headers.push(("Upload-Length", "10"));
    let created = http_raw_request(server.http, "POST", "/api/v1/uploads", None, &headers);
    assert_eq!(created.status, 201);
    let location = created.header("location").unwrap().to_owned();
    let path = location.split_once("127.0.0.1").unwrap().1.split_once('/').map(|(_, p)| format!("/{p}")).unwrap();
    assert_eq!(files_under(&uploads_dir).len(), 1);
    assert_eq!(http_raw_request(server.http, "DELETE", &path, None, &tus).status, 204);
    assert!(files_under(&uploads_dir).is_empty());
    assert_eq!(http_raw_request(server.http, "HEAD", &path, None, &tus).status, 404);
}

#[test]
fn a_traversal_in_the_file_name_stores_nothing_outside_the_upload() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let marker = format!("rill-escape-{}", std::process::id());
    let file = server.dir.join("small.bin");
    std::fs::write(&file, vec![7u8; 100_000]).unwrap();
    let hostile = format!("filename=../../../../../../tmp/{marker}.mp4");
    let client = tus_upload(&server, &file, &[&hostile, "title=../../etc/passwd"], None);
    let upload = upload_json(&server, &upload_id(&client));
    assert_eq!(upload["filename"], format!("{marker}.mp4"), "only the last component is kept, for display");
    assert!(!Path::new("/tmp").join(format!("{marker}.mp4")).exists());
    let stray: Vec<String> = files_under(&server.dir).into_iter().filter(|f| f.contains(&marker)).collect();
    assert!(stray.is_empty(), "nothing named after the metadata: {stray:?}");
    for f in files_under(&server.dir.join("data/uploads")) {
        assert!(f.ends_with("/data") && f.len() == "0123456789ab/data".len(), "upload files are keyed by id: {f}");
    }
    assert!(eventually(Duration::from_secs(5), || upload_json(&server, &upload_id(&client))["state"] != "uploading"));
}

/// Processes of `rill process-upload` for `video_id` still running.
fn processing_children(video_id: &str) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains("process-upload") && cmdline.contains(video_id))
        .count()
}

#[test]
fn a_job_cut_off_by_a_crash_starts_over_at_the_next_start() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let source = make_mp4(&server.dir, "source.mp4", 10, "1280x720");
    let id = upload_id(&tus_upload(&server, &source, &["title=Crash"], None));
    let mut last = Value::Null;
    let started = eventually(Duration::from_secs(120), || {
        last = upload_json(&server, &id);
        last["state"] == "processing" && last["progress"].as_f64().unwrap_or(0.0) >= 5.0
    });
    assert!(started, "processing made progress: {last}");
    assert!(last["eta_s"].is_u64(), "an ETA while processing: {last}");
    let video_id = last["video_id"].as_str().unwrap().to_owned();
    assert_eq!(processing_children(&video_id), 1);
    // kill -9 mid-job, then start again.
    let server = server.restart();
    let upload = processed(&server, &id);
    assert_eq!(upload["state"], "ready", "{upload}");
    assert!(eventually(Duration::from_secs(10), || processing_children(&video_id) == 0), "no child outlives its job");
    let (status, playlist) = server.get(&format!("/vod/{video_id}/video/index.m3u8"));
    assert_eq!(status, 200);
    assert!(!playlist.contains("DISCONTINUITY"), "one clean run:\n{playlist}");
    let url = format!("http://127.0.0.1:{}/vod/{video_id}/index.m3u8", server.http);
    let probe = ffprobe(&url, &["-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"]);
    let frames: u64 = probe["streams"][0]["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert_eq!(frames, 300, "every picture once: {probe}");
}
