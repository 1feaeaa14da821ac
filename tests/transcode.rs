//! End-to-end tests of the live ABR ladder with real peers: ffmpeg publishes 1280×720 H.264
//! over RTMP; ffprobe reads each rendition's LL-HLS playlist (sizes, bitrates, keyframe times);
//! hls.js in headless Chromium switches down under CDP network throttling and keeps playing;
//! a broken publisher or an overloaded machine ends or trims only that stream's ladder. Each
//! holds [`common::serial`].

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

fn ladder_server(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("RILL_TRANSCODE_ENABLED", "true")];
    env.extend_from_slice(extra);
    Server::start("open", &env)
}

/// What ffprobe sees in a media playlist's video.
#[derive(Debug)]
struct Probe {
    size: String,
    /// Presentation times of the keyframes, in ms.
    keyframes: Vec<i64>,
    /// Video bitrate over the packets read.
    kbps: f64,
}

fn ffprobe(url: &str, entries: &str) -> String {
    let child = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", entries, "-of", "csv=p=0", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffprobe is installed");
    let output = wait_with_timeout(child, T);
    assert!(output.status.success(), "ffprobe {url}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn probe(url: &str) -> Probe {
    let sizes = ffprobe(url, "stream=width,height");
    let size = sizes.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default().replace(',', "x");
    let mut keyframes = Vec::new();
    let (mut bytes, mut first, mut last) = (0u64, f64::MAX, f64::MIN);
    for line in ffprobe(url, "packet=pts_time,size,flags").lines() {
        let fields: Vec<&str> = line.split(',').collect();
        let [pts, packet_size, flags, ..] = fields[..] else { continue };
        let (Ok(pts), Ok(packet_size)) = (pts.parse::<f64>(), packet_size.parse::<u64>()) else { continue };
        if flags.starts_with('K') {
            keyframes.push((pts * 1000.0).round() as i64);
        }
        bytes += packet_size;
        first = first.min(pts);
        last = last.max(pts);
    }
    let kbps = if last > first { bytes as f64 * 8.0 / (last - first) / 1000.0 } else { 0.0 };
    Probe { size, keyframes, kbps }
}

#[test]
fn renditions_have_the_ladder_sizes_bitrates_and_the_source_keyframes() {
    let _serial = serial();
    let server = ladder_server(&[]);
    let publisher = publish(&server.rtmp_url("abr"), 24, "1280x720");
    // 1280×720 source: 1080p and 720p are skipped (not smaller); 480p and 360p are made.
    let mut multivariant = String::new();
    assert!(
        eventually(Duration::from_secs(40), || {
            multivariant = server.get("/live/abr/index.m3u8").1;
            multivariant.matches("#EXT-X-STREAM-INF").count() == 3
        }),
        "the multivariant playlist never listed 3 renditions:\n{multivariant}\n{}",
        server.log()
    );
    for expected in ["RESOLUTION=1280x720", "RESOLUTION=854x480", "RESOLUTION=640x360", "480p/video/media.m3u8"] {
        assert!(multivariant.contains(expected), "missing {expected}:\n{multivariant}");
    }
    let (_, media) = server.get("/live/abr/480p/video/media.m3u8");
    assert!(media.contains("#EXT-X-RENDITION-REPORT:URI=\"../../video/media.m3u8\""), "{media}");
    assert!(media.contains("#EXT-X-RENDITION-REPORT:URI=\"../../360p/video/media.m3u8\""), "{media}");
    let (_, source_media) = server.get("/live/abr/video/media.m3u8");
    assert!(source_media.contains("#EXT-X-RENDITION-REPORT:URI=\"../480p/video/media.m3u8\""), "{source_media}");
    let (_, mpd) = server.get("/live/abr/manifest.mpd");
    assert_eq!(mpd.matches("<Representation").count(), 4, "{mpd}");
    let stream = server.stream("abr");
    let renditions = stream["transcode"]["renditions"].as_array().cloned().unwrap_or_default();
    assert_eq!(renditions.len(), 2, "{stream}");
    // The live thumbnail (made every 10 s): a 320-pixel-wide JPEG.
    let mut thumbnail = http_raw(server.http, "GET", "/live/abr/thumbnail.jpg", None, None);
    assert!(
        eventually(Duration::from_secs(25), || {
            thumbnail = http_raw(server.http, "GET", "/live/abr/thumbnail.jpg", None, None);
            thumbnail.status == 200
        }),
        "no live thumbnail: {}\n{}",
        thumbnail.text(),
        server.log()
    );
    assert_eq!(thumbnail.header("content-type"), Some("image/jpeg"));
    assert!(thumbnail.body.starts_with(&[0xff, 0xd8, 0xff]), "not a JPEG");
    let status = http_raw(server.http, "GET", "/live/nothing/thumbnail.jpg", None, None).status;
    assert_eq!(status, 404);

    // After the publisher ends, the playlists stay up with ENDLIST: compare whole windows.
    let output = publisher.wait(T);
    assert!(output.status.success(), "publisher: {}", String::from_utf8_lossy(&output.stderr));
    assert!(
        eventually(Duration::from_secs(30), || server.get("/live/abr/360p/video/media.m3u8").1.contains("ENDLIST")),
        "the renditions never ended:\n{}",
        server.log()
    );
    let url = |path: &str| format!("http://127.0.0.1:{}/live/abr/{path}/media.m3u8", server.http);
    let source = probe(&url("video"));
    assert_eq!(source.size, "1280x720");
    for (rung, size, kbps) in [("480p", "854x480", 1100.0), ("360p", "640x360", 365.0)] {
        let rendition = probe(&url(&format!("{rung}/video")));
        assert_eq!(rendition.size, size, "{rung}: {rendition:?}");
        eprintln!(
            "{rung}: {size} {:.0} kbps (configured {kbps}), {} keyframes",
            rendition.kbps,
            rendition.keyframes.len()
        );
        assert!(
            rendition.kbps > 0.5 * kbps && rendition.kbps < 1.3 * kbps,
            "{rung}: {:.0} kbps, configured {kbps}",
            rendition.kbps
        );
        // Every rendition keyframe is a source keyframe, and over the time both cover, every
        // source keyframe is a rendition keyframe.
        assert!(rendition.keyframes.len() >= 8, "{rung}: {rendition:?}");
        let (from, to) = (rendition.keyframes[0], *rendition.keyframes.last().unwrap());
        let source_keys: Vec<i64> = source.keyframes.iter().copied().filter(|k| (from..=to).contains(k)).collect();
        assert_eq!(rendition.keyframes, source_keys, "{rung}: keyframes differ from the source's");
    }
}

#[test]
fn hls_js_switches_down_under_throttling_and_keeps_playing() {
    let _serial = serial();
    let server = ladder_server(&[]);
    let _publisher = publish(&server.rtmp_url("thr"), 75, "1280x720");
    assert!(
        eventually(Duration::from_secs(40), || {
            server.get("/live/thr/index.m3u8").1.matches("#EXT-X-STREAM-INF").count() == 3
        }),
        "no ladder:\n{}",
        server.log()
    );
    let url = format!("http://127.0.0.1:{}/play/thr?mode=hls", server.http);
    // The source is ~1.6 Mbit/s with audio, 480p ~1.2, 360p ~0.46, and LL-HLS adds ~0.3 Mbit/s
    // of playlist reloads and part requests for two tracks: 1 Mbit/s only fits 360p.
    let result = browser_probe("abr.mjs", &[&url, "15", "1000", "35"], &[], Duration::from_secs(120));
    let samples = result["samples"].as_array().expect("samples").clone();
    let at = |from: f64| samples.iter().filter(move |s| s["t"].as_f64().unwrap_or(0.0) >= from);
    let before: Vec<i64> = at(5.0).filter(|s| s["throttled"] == false).filter_map(|s| s["height"].as_i64()).collect();
    assert!(before.iter().any(|h| *h == 720), "hls.js never played the source unthrottled: {before:?}\n{result}");
    // Within 20 s of the drop it plays a lower rendition, and stays there.
    let late: Vec<i64> = at(35.0).filter_map(|s| s["height"].as_i64()).collect();
    assert!(
        !late.is_empty() && late.iter().all(|h| *h <= 480),
        "hls.js did not switch down: before {before:?}, 20 s into the throttling {late:?}\n{result}"
    );
    // And it plays steadily at that rendition: the last 10 s without a stall (one sample of
    // slack for a reload that a part request was queued behind).
    let last: Vec<&serde_json::Value> = at(40.0).collect();
    let times: Vec<f64> = last.iter().filter_map(|s| s["currentTime"].as_f64()).collect();
    let advanced = times.last().unwrap_or(&0.0) - times.first().unwrap_or(&0.0);
    let stalled = last.iter().filter(|s| s["state"] != "playing").count();
    assert!(
        stalled <= 1 && advanced > 8.0,
        "playback after the switch: {stalled} stalled samples, advanced {advanced:.1} s in the last 10 s\n{result}"
    );
    // How long the switch took, for the record.
    let first_low = samples.iter().find(|s| s["throttled"] == true && s["height"].as_i64().is_some_and(|h| h <= 480));
    eprintln!(
        "switched down {:.1} s after the throttling began",
        first_low.and_then(|s| s["t"].as_f64()).unwrap_or(0.0) - 15.0
    );
}

/// A 320×180 rung, so a 640×360 source costs little.
const SMALL_LADDER: &str = "[transcode]\nenabled = true\n\n[[transcode.ladder]]\nname = \"180p\"\nwidth = 320\nheight = 180\nvideo_kbps = 200\n";

#[test]
fn a_corrupted_run_ends_only_that_streams_ladder() {
    let _serial = serial();
    let server = Server::start_with_conf("open", SMALL_LADDER, &[]);
    let _clean = publish(&server.rtmp_url("clean"), 40, "640x360");
    // The same test pattern, but from packet 120 (4 s) to 300 (10 s) the noise bitstream
    // filter rewrites about every fourth byte of each H.264 packet: NAL headers and slices
    // the decoder cannot take.
    let broken = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-b:v", "800k"])
        .args(["-bsf:v", "noise=amount=if(between(n\\,120\\,300)\\,4\\,0)", "-t", "40", "-f", "flv"])
        .arg(server.rtmp_url("broken"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg");
    let _broken = Peer::new(broken);
    let ladder_state = |name: &str| server.stream(name)["transcode"].clone();
    assert!(
        eventually(Duration::from_secs(30), || {
            let t = ladder_state("broken");
            t["error"].is_string() && t["renditions"][0]["state"] == "failed"
        }),
        "the broken stream's ladder did not fail: {}\n{}",
        ladder_state("broken"),
        server.log()
    );
    let error = ladder_state("broken")["error"].as_str().unwrap().to_string();
    assert!(error.contains("live/broken"), "the error names the stream: {error}");
    assert!(server.log().contains("GStreamer error"), "{}", server.log());
    // The other stream's ladder kept going, and both sources still play.
    let clean = ladder_state("clean");
    assert_eq!(clean["renditions"][0]["state"], "running", "{clean}");
    assert!(clean["error"].is_null(), "{clean}");
    let rendition = format!("http://127.0.0.1:{}/live/clean/180p/video/media.m3u8", server.http);
    let decoded = decode(&rendition, 4, T);
    assert_eq!(decoded.dimensions.as_deref(), Some("320x180"), "{decoded:?}");
    assert!(decoded.frames >= 90, "{decoded:?}");
    for name in ["clean", "broken"] {
        let decoded = decode(&server.flv_url(name), 4, T);
        assert!(decoded.frames >= 90, "{name}: {decoded:?}");
    }
    assert!(server.metric("rill_transcode_ladders_total{outcome=\"failed\"}") >= 1.0);
}

#[test]
fn overload_drops_the_most_expensive_rung_first_and_never_stalls_the_source() {
    let _serial = serial();
    // x264's placebo preset cannot encode 480p in real time here: the ladder must shed rungs.
    let ladder = "[transcode]\nenabled = true\nspeed_preset = \"placebo\"\nmax_lateness_ms = 1000\n\n\
                  [[transcode.ladder]]\nname = \"480p\"\nwidth = 854\nheight = 480\nvideo_kbps = 1100\n\n\
                  [[transcode.ladder]]\nname = \"360p\"\nwidth = 640\nheight = 360\nvideo_kbps = 365\n";
    let server = Server::start_with_conf("open", ladder, &[]);
    let _publisher = publish(&server.rtmp_url("hot"), 45, "1280x720");
    let rung = |name: &str| -> serde_json::Value {
        let renditions = server.stream("hot")["transcode"]["renditions"].clone();
        renditions.as_array().into_iter().flatten().find(|r| r["name"] == name).cloned().unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(40), || rung("480p")["state"] == "dropped_overload"),
        "480p was never dropped: {}\n{}",
        server.stream("hot"),
        server.log()
    );
    // The cheaper rung was not dropped before the expensive one.
    let state_360 = rung("360p")["state"].clone();
    assert!(state_360 == "running" || state_360 == "dropped_overload" || state_360 == "starting", "{state_360}");
    assert!(server.metric("rill_transcode_renditions{state=\"dropped_overload\"}") >= 1.0);
    // Meanwhile the source plays at full rate.
    let decoded = decode(&server.flv_url("hot"), 6, T);
    assert!(decoded.frames >= 170, "the source stalled: {decoded:?}");
    assert_eq!(decoded.dimensions.as_deref(), Some("1280x720"));
}

#[test]
fn patch_turns_a_live_streams_ladder_on_and_off() {
    let _serial = serial();
    let conf = SMALL_LADDER.replace("enabled = true", "enabled = false");
    let server = Server::start_with_conf("open", &conf, &[]);
    let _publisher = publish(&server.rtmp_url("pat"), 40, "640x360");
    assert!(eventually(Duration::from_secs(20), || server.get("/live/pat/index.m3u8").0 == 200), "{}", server.log());
    assert_eq!(server.stream("pat")["transcode"]["enabled"], false);
    // Bad requests are refused with a reason; without the admin token, 401.
    let (status, body) = server.api("PATCH", "/api/v1/streams/pat", Some(r#"{"transcode": {"ladder": ["4k"]}}"#));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("4k"), "{body}");
    let (status, _) = server.api("PATCH", "/api/v1/streams/pat", Some(r#"{"transcode": {"enable": true}}"#));
    assert_eq!(status, 422);
    let unauthenticated = http_raw(server.http, "PATCH", "/api/v1/streams/pat", Some("{}"), None);
    assert_eq!(unauthenticated.status, 401);
    // On: the live stream gets its 180p rendition at once.
    let (status, body) = server.api("PATCH", "/api/v1/streams/pat", Some(r#"{"transcode": {"enabled": true}}"#));
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(Duration::from_secs(20), || server.get("/live/pat/index.m3u8").1.contains("RESOLUTION=320x180")),
        "no rendition after PATCH:\n{}",
        server.log()
    );
    // Off: the rendition leaves the multivariant playlist.
    let (status, _) = server.api("PATCH", "/api/v1/streams/pat", Some(r#"{"transcode": {"enabled": false}}"#));
    assert_eq!(status, 200);
    assert!(
        eventually(Duration::from_secs(20), || !server.get("/live/pat/index.m3u8").1.contains("RESOLUTION=320x180")),
        "the rendition stayed after PATCH off:\n{}",
        server.log()
    );
    assert_eq!(server.stream("pat")["transcode"]["enabled"], false);
}
