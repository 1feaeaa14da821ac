//! VOD extras end to end: captions uploaded through the API (WebVTT and SubRip, hostile files
//! refused), served in the HLS multivariant playlist and the MPD, and shown as text tracks in
//! Chromium over hls.js and dash.js; the storyboard (sprite + WebVTT thumbnails track) made
//! when an upload is processed, and shown on the watch page's seek bar.

mod common;

use common::{browser_probe, eventually, http_raw_request, serial, Server, ADMIN_TOKEN};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// An H.264 + AAC MP4 of `seconds` at `size` (2 s GOPs), uploaded in one tus `PATCH`; the
/// processed video's id.
fn uploaded_video(server: &Server, seconds: u32, size: &str) -> String {
    let path_on_disk = server.dir.join("source.mp4");
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=30:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:sample_rate=48000:duration={seconds}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .args(["-movflags", "+faststart"])
        .arg(&path_on_disk)
        .output()
        .expect("ffmpeg runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let bytes = std::fs::read(&path_on_disk).unwrap();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let length = bytes.len().to_string();
    let tus = [("Authorization", auth.as_str()), ("Tus-Resumable", "1.0.0")];
    let mut create = tus.to_vec();
    create.push(("Upload-Length", &length));
    create.push(("Upload-Metadata", "title VGlkZXM=")); // "Tides"
    let created = http_raw_request(server.http, "POST", "/api/v1/uploads", None, &create);
    assert_eq!(created.status, 201, "{}", created.text());
    let location = created.header("location").unwrap().to_owned();
    let path = format!("/{}", location.split_once("://").unwrap().1.split_once('/').unwrap().1);
    // The whole file in one PATCH (curl sends bytes as they are).
    let patched = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH"])
        .args(["-H", &format!("Authorization: {auth}"), "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0"])
        .args(["-H", "Content-Type: application/offset+octet-stream", "--data-binary"])
        .arg(format!("@{}", path_on_disk.display()))
        .arg(format!("http://127.0.0.1:{}{path}", server.http))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&patched.stdout), "204", "{}", String::from_utf8_lossy(&patched.stderr));
    let mut upload = Value::Null;
    let done = eventually(Duration::from_secs(300), || {
        upload = server.api("GET", &path, None).1;
        matches!(upload["state"].as_str(), Some("ready" | "failed"))
    });
    assert!(done && upload["state"] == "ready", "processed: {upload}");
    upload["video_id"].as_str().unwrap().to_owned()
}

fn put_caption(server: &Server, video: &str, lang: &str, query: &str, body: &str, token: Option<&str>) -> (u16, Value) {
    let mut headers = vec![("Content-Type", "text/vtt")];
    let auth = token.map(|t| format!("Bearer {t}"));
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let path = format!("/api/v1/videos/{video}/captions/{lang}{query}");
    let response = http_raw_request(server.http, "PUT", &path, Some(body), &headers);
    (response.status, serde_json::from_str(&response.text()).unwrap_or(Value::Null))
}

const ENGLISH: &str =
    "WEBVTT\n\n00:00.000 --> 00:03.000\nHello from the harbour\n\n00:03.000 --> 00:08.000\nThe tide is coming in\n";
const FRENCH_SRT: &str = "1\r\n00:00:00,000 --> 00:00:04,000\r\nBonjour du port\r\n\r\n2\r\n00:00:04,000 --> 00:00:08,000\r\nLa marée monte\r\n";

#[test]
fn captions_in_two_languages_reach_hls_dash_and_chromium() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let video = uploaded_video(&server, 8, "640x360");

    // Refusals: no token, a bad language, hostile files; nothing is listed.
    assert_eq!(put_caption(&server, &video, "en", "", ENGLISH, None).0, 401);
    let (status, body) = put_caption(&server, &video, "../../etc", "", ENGLISH, Some(ADMIN_TOKEN));
    assert!(status == 400 || status == 404, "{status} {body}");
    let (status, body) = put_caption(&server, &video, "english!", "", ENGLISH, Some(ADMIN_TOKEN));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("language tag"), "{body}");
    for (file, reason) in [
        ("<tt xmlns=\"http://www.w3.org/ns/ttml\"/>", "neither WebVTT"),
        ("WEBVTT\n\n00:05.000 --> 00:01.000\nbackwards", "ends before it starts"),
        ("WEBVTT\n\nNOTE nothing\n", "no cues"),
    ] {
        let (status, body) = put_caption(&server, &video, "en", "", file, Some(ADMIN_TOKEN));
        assert_eq!(status, 400, "{file:?}: {body}");
        assert!(body["error"].as_str().unwrap().contains(reason), "{file:?}: {body}");
    }
    let (status, huge) = put_caption(&server, &video, "en", "", &"a".repeat(3 * 1024 * 1024), Some(ADMIN_TOKEN));
    assert!(status == 400 || status == 413, "{status} {huge}");
    assert_eq!(
        server.api("GET", &format!("/api/v1/videos/{video}/captions"), None).1["captions"],
        serde_json::json!([])
    );

    // English (WebVTT) and French (SubRip, converted), and a third language removed again.
    let (status, en) = put_caption(&server, &video, "EN", "", ENGLISH, Some(ADMIN_TOKEN));
    assert_eq!((status, en["lang"].as_str(), en["cues"].as_i64()), (200, Some("en"), Some(2)), "{en}");
    let (status, fr) = put_caption(&server, &video, "fr", "?label=Fran%C3%A7ais", FRENCH_SRT, Some(ADMIN_TOKEN));
    assert_eq!((status, fr["converted_from_srt"].as_bool()), (200, Some(true)), "{fr}");
    assert_eq!(put_caption(&server, &video, "de", "", ENGLISH, Some(ADMIN_TOKEN)).0, 200);
    let (status, _) = server.api("DELETE", &format!("/api/v1/videos/{video}/captions/de"), None);
    assert_eq!(status, 204);
    let (_, list) = server.api("GET", &format!("/api/v1/videos/{video}/captions"), None);
    let langs: Vec<&str> = list["captions"].as_array().unwrap().iter().map(|c| c["lang"].as_str().unwrap()).collect();
    assert_eq!(langs, ["en", "fr"], "{list}");
    assert!(!server.dir.join(format!("data/recordings/{video}/captions/de.vtt")).exists(), "the file went with it");

    let (status, master) = server.get(&format!("/vod/{video}/index.m3u8"));
    assert_eq!(status, 200);
    assert_eq!(master.matches("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\"").count(), 2, "{master}");
    assert!(master.contains("NAME=\"Français\",LANGUAGE=\"fr\""), "{master}");
    assert!(master.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")).all(|l| l.ends_with(",SUBTITLES=\"subs\"")));
    let (status, playlist) = server.get(&format!("/vod/{video}/captions/fr.m3u8"));
    assert_eq!(status, 200, "{playlist}");
    assert!(playlist.contains("fr.vtt") && playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
    let (status, vtt) = server.get(&format!("/vod/{video}/captions/fr.vtt"));
    assert_eq!(status, 200);
    assert!(vtt.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:"), "{vtt}");
    assert!(vtt.contains("00:00:04.000 --> 00:00:08.000\nLa marée monte"), "SRT times became WebVTT's: {vtt}");
    let (status, mpd) = server.get(&format!("/vod/{video}/manifest.mpd"));
    assert_eq!(status, 200);
    assert_eq!(mpd.matches("mimeType=\"text/vtt\"").count(), 2, "{mpd}");
    assert!(mpd.contains("<BaseURL>captions/en.vtt</BaseURL>"), "{mpd}");
    assert_eq!(server.get(&format!("/vod/{video}/captions/de.vtt")).0, 404);
    assert_eq!(server.get(&format!("/vod/{video}/captions/..%2Fthumbnail.jpg")).0, 404);

    // Chromium: both players list both languages and show the chosen one's cues.
    for (mode, lang) in [("hls", "fr"), ("dash", "en")] {
        let url = format!("http://127.0.0.1:{}/watch/{video}?mode={mode}", server.http);
        let probe = browser_probe("vod_extras.mjs", &[&url, lang, "60"], &[], Duration::from_secs(90));
        let offered: Vec<&str> =
            probe["captions"].as_array().unwrap().iter().filter_map(|c| c["lang"].as_str()).collect();
        assert!(offered.contains(&"en") && offered.contains(&"fr"), "{mode}: {probe}");
        assert_eq!(probe["shown"]["language"], lang, "{mode}: the chosen captions show: {probe}");
        assert!(probe["shown"]["cues"].as_u64().unwrap() >= 2, "{mode}: {probe}");
        assert!(probe["consoleErrors"].as_array().unwrap().is_empty(), "{mode}: {probe}");
    }

    // Deleted with the video.
    let (status, _) = server.api("DELETE", &format!("/api/v1/videos/{video}"), None);
    assert_eq!(status, 204);
    assert!(!Path::new(&server.dir.join(format!("data/recordings/{video}"))).exists());
}

/// Width and height of an image, by ffprobe.
fn image_size(path: &Path) -> (u64, u64) {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries", "stream=width,height,codec_name"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    let stream = &json["streams"][0];
    assert_eq!(stream["codec_name"], "mjpeg", "{json}");
    (stream["width"].as_u64().unwrap(), stream["height"].as_u64().unwrap())
}

#[test]
fn a_storyboard_previews_the_seek_bar_and_the_poster_is_chosen_by_time() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let video = uploaded_video(&server, 9, "640x360");

    // 9 s, a tile every 2 s: 5 tiles of 160x90 in one row.
    let (status, vtt) = server.get(&format!("/vod/{video}/storyboard.vtt"));
    assert_eq!(status, 200, "{vtt}");
    assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n"), "{vtt}");
    assert!(vtt.ends_with("00:00:08.000 --> 00:00:09.000\nstoryboard.jpg#xywh=640,0,160,90\n"), "{vtt}");
    let sprite = http_raw_request(server.http, "GET", &format!("/vod/{video}/storyboard.jpg"), None, &[]);
    assert_eq!((sprite.status, sprite.header("content-type")), (200, Some("image/jpeg")));
    assert_eq!(&sprite.body[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    let file = server.dir.join("sprite.jpg");
    std::fs::write(&file, &sprite.body).unwrap();
    assert_eq!(image_size(&file), (800, 90), "5 tiles of 160x90");

    // The watch page's seek bar shows the picture under the pointer.
    let url = format!("http://127.0.0.1:{}/watch/{video}", server.http);
    let probe = browser_probe("vod_extras.mjs", &[&url, "none", "20"], &[], Duration::from_secs(60));
    assert!(probe["started"].as_bool().unwrap_or(false), "{probe}");
    let preview = &probe["preview"];
    assert_eq!(preview["hidden"], false, "{probe}");
    assert!(preview["image"].as_str().unwrap_or_default().contains(&format!("/vod/{video}/storyboard.jpg")), "{probe}");
    assert_eq!((preview["width"].as_u64(), preview["height"].as_u64()), (Some(160), Some(90)), "{probe}");
    let time = preview["time"].as_f64().unwrap();
    assert!((3.0..=6.0).contains(&time), "the middle of the bar is the middle of the video: {probe}");
    let tile = (time / 2.0).floor() as i64 * 160;
    let expected = if tile == 0 { "0px 0px".to_owned() } else { format!("-{tile}px 0px") };
    assert_eq!(preview["position"].as_str(), Some(expected.as_str()), "{probe}");
    let link = probe["download"].as_str().unwrap_or_default();
    assert!(link.ends_with(&format!("/vod/{video}/download")), "the page links the download: {probe}");

    // The poster, made again from 6 s: another picture than the first.
    let first = http_raw_request(server.http, "GET", &format!("/vod/{video}/thumbnail.jpg"), None, &[]);
    assert_eq!(first.status, 200);
    let path = format!("/api/v1/videos/{video}");
    let (status, body) = server.api("PATCH", &path, Some(r#"{"thumbnail_time": 60}"#));
    assert_eq!(status, 400, "past the end: {body}");
    let (status, body) = server.api("PATCH", &path, Some(r#"{"thumbnail_time": 6.0}"#));
    assert_eq!(status, 200, "{body}");
    let second = http_raw_request(server.http, "GET", &format!("/vod/{video}/thumbnail.jpg"), None, &[]);
    assert_eq!(second.status, 200);
    assert_ne!(first.body, second.body, "the poster changed");
    let file = server.dir.join("poster.jpg");
    std::fs::write(&file, &second.body).unwrap();
    assert_eq!(image_size(&file), (320, 180));
}

/// ffprobe's JSON of a file.
fn probe(path: &Path, args: &[&str]) -> Value {
    let output = Command::new("ffprobe").args(["-v", "error", "-of", "json"]).args(args).arg(path).output().unwrap();
    assert!(output.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Downloads `path` into `file` with curl; the response's headers.
fn curl_download(server: &Server, path: &str, file: &Path, headers: &[&str]) -> (u16, String) {
    let mut command = Command::new("curl");
    command.args(["-sS", "-D", "-", "-o"]).arg(file);
    for h in headers {
        command.args(["-H", h]);
    }
    let output = command.arg(format!("http://127.0.0.1:{}{path}", server.http)).output().expect("curl runs");
    let head = String::from_utf8_lossy(&output.stdout).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head)
}

/// Checks a downloaded MP4: `moov` before `mdat`, H.264 + AAC, `duration` ±0.1 s, every
/// picture decodes from start to end, and a seek to `seek` s lands there.
fn check_download(file: &Path, duration: f64, frames: Option<u64>, seek: f64) {
    let bytes = std::fs::read(file).unwrap();
    let second_box = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
    assert_eq!(&bytes[second_box + 4..second_box + 8], b"moov", "moov first");
    let json = probe(file, &["-count_frames", "-show_entries", "stream=codec_name,nb_read_frames:format=duration"]);
    let codecs: Vec<&str> =
        json["streams"].as_array().unwrap().iter().filter_map(|s| s["codec_name"].as_str()).collect();
    assert_eq!(codecs, ["h264", "aac"], "{json}");
    let got: f64 = json["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((got - duration).abs() <= 0.1, "duration {got} s, the video's {duration} s: {json}");
    if let Some(frames) = frames {
        assert_eq!(json["streams"][0]["nb_read_frames"].as_str(), Some(frames.to_string().as_str()), "{json}");
    }
    let decode =
        Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(file).args(["-f", "null", "-"]).output().unwrap();
    assert!(decode.status.success() && decode.stderr.is_empty(), "{}", String::from_utf8_lossy(&decode.stderr));
    let interval = format!("{seek}%+0.5");
    let sought =
        probe(file, &["-read_intervals", &interval, "-select_streams", "v:0", "-show_entries", "frame=pts_time"]);
    let first: f64 = sought["frames"][0]["pts_time"].as_str().unwrap().parse().unwrap();
    assert!((first - seek).abs() <= 1.1, "a seek to {seek} s starts at the keyframe before it: {first}");
}

#[test]
fn downloads_are_progressive_mp4s_with_ranges_and_visibility() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let video = uploaded_video(&server, 9, "640x360");
    let (_, json) = server.api("GET", &format!("/api/v1/videos/{video}"), None);
    let duration = json["duration_ms"].as_f64().unwrap() / 1000.0;
    let file = server.dir.join("download.mp4");
    let (status, head) = curl_download(&server, &format!("/vod/{video}/download"), &file, &[]);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-type: video/mp4")
            && head.contains("content-disposition: attachment; filename=\"tides-video.mp4\""),
        "{head}"
    );
    check_download(&file, duration, Some(270), 5.0);
    let whole = std::fs::read(&file).unwrap();
    assert!(head.contains(&format!("content-length: {}", whole.len())), "{head}");

    // Ranges: the same bytes as the whole; past the end 416.
    let auth = [("Range", "bytes=100-199")];
    let part = http_raw_request(server.http, "GET", &format!("/vod/{video}/download"), None, &auth);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole[100..200]);
    assert_eq!(part.header("content-range"), Some(format!("bytes 100-199/{}", whole.len()).as_str()));
    let tail =
        http_raw_request(server.http, "GET", &format!("/vod/{video}/download"), None, &[("Range", "bytes=-1000")]);
    assert_eq!((tail.status, &tail.body[..]), (206, &whole[whole.len() - 1000..]));
    let past = format!("bytes={}-", whole.len());
    let refused = http_raw_request(server.http, "GET", &format!("/vod/{video}/download"), None, &[("Range", &past)]);
    assert_eq!(refused.status, 416);
    assert_eq!(server.get(&format!("/vod/{video}/download?rendition=video-9000p")).0, 404);
    assert_eq!(server.get(&format!("/vod/{video}/download?rendition=audio")).0, 404);

    // Private: refused without the token, as the playlists are.
    let (status, _) = server.api("PATCH", &format!("/api/v1/videos/{video}"), Some(r#"{"visibility":"private"}"#));
    assert_eq!(status, 200);
    assert_eq!(server.get(&format!("/vod/{video}/index.m3u8")).0, 404);
    assert_eq!(server.get(&format!("/vod/{video}/download")).0, 404);
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let (status, _) = curl_download(&server, &format!("/vod/{video}/download"), &file, &[&auth]);
    assert_eq!(status, 200);
    assert_eq!(std::fs::read(&file).unwrap(), whole);
    // And with a play token for this video, as its playlists.
    let mint = format!(r#"{{"action":"play","video":"{video}","ttl_s":60}}"#);
    let (status, minted) = server.api("POST", "/api/v1/tokens", Some(&mint));
    assert_eq!(status, 201, "{minted}");
    let token = minted["token"].as_str().unwrap();
    let (status, _) = curl_download(&server, &format!("/vod/{video}/download?token={token}"), &file, &[]);
    assert_eq!(status, 200);
    assert_eq!(std::fs::read(&file).unwrap(), whole);
}

#[test]
fn a_recording_downloads_as_one_mp4_in_sync() {
    let _serial = serial();
    let server = Server::start("open", &[("RILL_BUS_RECONNECT_GRACE_S", "2")]);
    let publisher = common::publish(&server.rtmp_url("dl"), 8, "640x360");
    let _ = publisher.wait(Duration::from_secs(60));
    let mut video = Value::Null;
    let ready = eventually(Duration::from_secs(30), || {
        let (_, page) = server.api("GET", "/api/v1/videos?stream=dl", None);
        video = page["videos"].get(0).cloned().unwrap_or(Value::Null);
        video["status"] == "ready"
    });
    assert!(ready, "{video}");
    let id = video["id"].as_str().unwrap();
    let duration = video["duration_ms"].as_f64().unwrap() / 1000.0;
    let file = server.dir.join("recording.mp4");
    let (status, head) = curl_download(&server, &format!("/vod/{id}/download"), &file, &[]);
    assert_eq!(status, 200, "{head}");
    check_download(&file, duration, None, 4.0);
    // Its storyboard was made when it became ready.
    assert!(eventually(Duration::from_secs(30), || server.get(&format!("/vod/{id}/storyboard.vtt")).0 == 200));
}

#[test]
fn an_upload_token_opens_uploads_and_nothing_else() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let (status, minted) = server.api("POST", "/api/v1/tokens", Some(r#"{"action":"upload","ttl_s":600}"#));
    assert_eq!(status, 201, "{minted}");
    let token = minted["token"].as_str().unwrap().to_owned();
    let (status, refused) =
        server.api("POST", "/api/v1/tokens", Some(r#"{"action":"upload","stream":"cam","ttl_s":600}"#));
    assert_eq!(status, 400, "{refused}");
    let auth = format!("Bearer {token}");
    let tus = [("Authorization", auth.as_str()), ("Tus-Resumable", "1.0.0"), ("Upload-Length", "10")];
    let created = http_raw_request(server.http, "POST", "/api/v1/uploads", None, &tus);
    assert_eq!(created.status, 201, "{}", created.text());
    let location = created.header("location").unwrap().to_owned();
    let path = format!("/{}", location.split_once("://").unwrap().1.split_once('/').unwrap().1);
    let status = http_raw_request(server.http, "GET", &path, None, &[("Authorization", auth.as_str())]);
    assert_eq!(status.status, 200, "the uploader follows its upload: {}", status.text());
    // Not the admin: no tokens, no edits, no private lists.
    let api = |method: &str, path: &str, body: Option<&str>| {
        http_raw_request(server.http, method, path, body, &[("Authorization", auth.as_str())]).status
    };
    assert_eq!(api("POST", "/api/v1/tokens", Some(r#"{"action":"upload","ttl_s":60}"#)), 401);
    assert_eq!(api("GET", "/api/v1/streams", None), 401);
    assert_eq!(api("PATCH", "/api/v1/videos/0123456789ab", Some("{}")), 401);
    // A play token is not an upload token.
    let (_, play) = server.api("POST", "/api/v1/tokens", Some(r#"{"action":"play","stream":"cam","ttl_s":60}"#));
    let play_auth = format!("Bearer {}", play["token"].as_str().unwrap());
    let tus = [("Authorization", play_auth.as_str()), ("Tus-Resumable", "1.0.0"), ("Upload-Length", "10")];
    assert_eq!(http_raw_request(server.http, "POST", "/api/v1/uploads", None, &tus).status, 401);
}

#[test]
fn chromium_uploads_through_the_upload_page_and_resumes_after_a_cut() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    // 17 MB (three 8 MiB PATCHes): the second, which carries the middle, is cut off.
    let file = server.dir.join("big.bin");
    let bytes: Vec<u8> = (0..17_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let page = format!("http://127.0.0.1:{}/upload", server.http);
    let probe =
        browser_probe("upload.mjs", &[&page, ADMIN_TOKEN, file.to_str().unwrap(), "90"], &[], Duration::from_secs(120));
    assert!(
        matches!(probe["state"].as_str(), Some("processing" | "ready" | "failed")),
        "the upload completed: {probe}"
    );
    let patches = probe["patches"].as_array().unwrap();
    let cut = patches.iter().position(|p| p["cut"] == true).unwrap_or_else(|| panic!("a PATCH was cut: {probe}"));
    assert_eq!(patches[cut]["offset"], 8_388_608, "{probe}");
    assert_eq!(
        patches.get(cut + 1).map(|p| &p["offset"]),
        Some(&patches[cut]["offset"]),
        "resumed where the server was: {probe}"
    );
    assert!(probe["heads"].as_u64().unwrap() >= 1, "tus-js-client asked the server for its offset: {probe}");
    let url = probe["url"].as_str().unwrap();
    let path = format!("/{}", url.split_once("://").unwrap().1.split_once('/').unwrap().1);
    let (status, upload) = server.api("GET", &path, None);
    assert_eq!(status, 200, "{upload}");
    assert_eq!(
        (upload["offset"].as_u64(), upload["length"].as_u64()),
        (Some(17_000_000), Some(17_000_000)),
        "{upload}"
    );
    let sha1 = Command::new("sha1sum").arg(&file).output().unwrap();
    let sha1 = String::from_utf8_lossy(&sha1.stdout).split_whitespace().next().unwrap().to_owned();
    assert_eq!(upload["sha1"].as_str(), Some(sha1.as_str()), "the file arrived whole: {upload}");
    assert_eq!(upload["title"], "From Chromium");
}
