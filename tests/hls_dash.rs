//! End-to-end tests of LL-HLS and DASH with real peers: ffmpeg publishes over RTMP; ffmpeg
//! decodes the HLS and DASH renditions; a raw HTTP client checks the delivery directives,
//! preload hints, chunked in-progress segments and caching headers. Each holds [`common::serial`].

mod common;

use common::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

fn wait_for_playlist(server: &Server, path: &str) {
    assert!(
        eventually(Duration::from_secs(20), || server.get(path).0 == 200),
        "{path} never became available:\n{}",
        server.log()
    );
}

/// `(msn, part)` of the last `EXT-X-PART` and of the preload hint.
fn live_edge(playlist: &str) -> ((u64, u32), (u64, u32)) {
    let parse = |uri: &str| {
        // Without the session parameter Rill carries into URIs (`?rs=…`).
        let file = uri.split('"').nth(1).unwrap().split('?').next().unwrap();
        let stem = file.trim_end_matches(".m4s");
        let (_, numbers) = stem.split_once('-').unwrap();
        let (msn, part) = numbers.split_once('.').unwrap();
        (msn.parse().unwrap(), part.parse().unwrap())
    };
    let last =
        playlist.lines().rev().find(|l| l.starts_with("#EXT-X-PART:")).map(|l| parse(l.split("URI=").nth(1).unwrap()));
    let hint =
        playlist.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT")).map(|l| parse(l.split("URI=").nth(1).unwrap()));
    (last.expect("playlist has parts"), hint.expect("playlist has a preload hint"))
}

#[test]
fn ffmpeg_decodes_ll_hls_and_dash_video_and_audio() {
    let _serial = serial();
    let server = Server::start("open", &[]);
    let _publisher = publish(&server.rtmp_url("cam"), 45, "1280x720");
    wait_for_playlist(&server, "/live/cam/index.m3u8");

    let (_, multivariant) = server.get("/live/cam/index.m3u8");
    assert!(multivariant.contains("RESOLUTION=1280x720"), "{multivariant}");
    assert!(multivariant.contains("CODECS=\"avc1.42c01f,mp4a.40.2\""), "{multivariant}");
    assert!(multivariant.contains("mp4a.40.2"), "{multivariant}");
    assert!(multivariant.contains("#EXT-X-MEDIA:TYPE=AUDIO"), "{multivariant}");

    for url in ["index.m3u8", "manifest.mpd"] {
        let url = format!("http://127.0.0.1:{}/live/cam/{url}", server.http);
        let decoded = decode_av(&url, 6, T);
        assert_eq!(decoded.dimensions.as_deref(), Some("1280x720"), "{url}: {decoded:?}");
        // ≥ 5 s of 30 fps video and 44.1 kHz AAC (43 frames/s).
        assert!(decoded.video_frames >= 150, "{url}: {decoded:?}");
        assert!(decoded.audio_frames >= 5 * 43, "{url}: {decoded:?}");
    }
}

#[test]
fn blocking_reload_preload_hints_and_delta_updates() {
    let _serial = serial();
    // 1 s segments make the delta-update window (6 target durations) reachable in seconds.
    let server = Server::start("open", &[("RILL_PACKAGER_SEGMENT_S", "1")]);
    let _publisher = publish(&server.rtmp_url("edge"), 45, "640x360");
    wait_for_playlist(&server, "/live/edge/video/media.m3u8");
    let get = |path: &str| http_raw(server.http, "GET", path, None, None);

    // The playlist: LL-HLS tags, short caching, CORS.
    let playlist = get("/live/edge/video/media.m3u8");
    assert_eq!(playlist.header("content-type"), Some("application/vnd.apple.mpegurl"));
    assert_eq!(playlist.header("access-control-allow-origin"), Some("*"));
    assert!(playlist.header("cache-control").unwrap().contains("max-age=0"));
    let text = playlist.text();
    for tag in
        ["#EXT-X-PART-INF:PART-TARGET=0.200", "CAN-BLOCK-RELOAD=YES", "#EXT-X-MAP:URI=", "#EXT-X-PROGRAM-DATE-TIME:"]
    {
        assert!(text.contains(tag), "missing {tag}:\n{text}");
    }
    assert!(text.contains("#EXT-X-RENDITION-REPORT:URI=\"../audio/media.m3u8\""), "{text}");
    let epoch =
        text.lines().find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")).unwrap().split('-').next().unwrap().to_string();

    // Blocking reload for the next part returns once it exists: within about a part
    // duration, never after the 3-target-duration timeout.
    let (_, (hint_msn, hint_part)) = live_edge(&text);
    let blocked = get(&format!("/live/edge/video/media.m3u8?_HLS_msn={hint_msn}&_HLS_part={hint_part}"));
    assert_eq!(blocked.status, 200, "{}", blocked.text());
    assert!(blocked.elapsed < Duration::from_millis(1500), "blocked {:?}", blocked.elapsed);
    assert!(blocked.text().contains(&format!("{epoch}-{hint_msn}.{hint_part}.m4s\"")), "{}", blocked.text());
    assert_eq!(blocked.header("cache-control"), Some("no-cache"));

    // The preload-hinted part: requested before it exists, served in full once complete.
    let (_, (hint_msn, hint_part)) = live_edge(&blocked.text());
    let started = Instant::now();
    let part = get(&format!("/live/edge/video/{epoch}-{hint_msn}.{hint_part}.m4s"));
    assert_eq!(part.status, 200);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(&part.body[4..8], b"prft", "a part starts with its producer reference time");
    assert_eq!(part.header("content-length").unwrap().parse::<usize>().unwrap(), part.body.len());
    assert!(part.header("cache-control").unwrap().contains("immutable"));
    let etag = part.header("etag").unwrap().to_string();
    let again = http_raw_with(
        server.http,
        &format!("/live/edge/video/{epoch}-{hint_msn}.{hint_part}.m4s"),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);

    // HTTP/2 (cleartext, prior knowledge: what a CDN or proxy in front speaks) serves the same part.
    let h2 = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code} %{size_download}",
        ])
        .arg(format!("http://127.0.0.1:{}/live/edge/video/{epoch}-{hint_msn}.{hint_part}.m4s", server.http))
        .output()
        .expect("curl is installed");
    assert_eq!(String::from_utf8_lossy(&h2.stdout), format!("2 200 {}", part.body.len()));

    // Errors a player can act on.
    assert_eq!(get("/live/edge/video/media.m3u8?_HLS_part=1").status, 400);
    assert_eq!(get(&format!("/live/edge/video/media.m3u8?_HLS_msn={}", hint_msn + 10)).status, 400);
    assert_eq!(get(&format!("/live/edge/video/media.m3u8?_HLS_msn={hint_msn}&_HLS_part=99")).status, 400);
    assert_eq!(get("/live/edge/video/media.m3u8?_HLS_skip=maybe").status, 400);
    assert_eq!(get("/live/edge/video/1-0.m4s").status, 404, "a segment of another epoch");
    assert_eq!(get(&format!("/live/edge/video/{epoch}-999999.m4s")).status, 404);
    assert_eq!(get("/live/edge/subtitles/media.m3u8").status, 404);
    assert_eq!(get("/live/edge/video/../../../etc/passwd").status, 404);
    assert_eq!(get("/live/nobody/index.m3u8").status, 404);
    assert_eq!(get("/live/bad%20name/index.m3u8").status, 400);

    // Delta updates once the playlist is longer than CAN-SKIP-UNTIL (6 × 1 s).
    assert!(eventually(Duration::from_secs(20), || get("/live/edge/video/media.m3u8?_HLS_skip=YES")
        .text()
        .contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=")));
    let delta = get("/live/edge/video/media.m3u8?_HLS_skip=YES").text();
    let full = get("/live/edge/video/media.m3u8").text();
    assert!(delta.len() < full.len());
}

#[test]
fn dash_serves_the_segment_being_written_as_it_grows() {
    let _serial = serial();
    let server = Server::start("open", &[]);
    let _publisher = publish(&server.rtmp_url("chunky"), 45, "640x360");
    wait_for_playlist(&server, "/live/chunky/manifest.mpd");
    let get = |path: &str| http_raw(server.http, "GET", path, None, None);
    // Wait for two complete segments and a growing one.
    assert!(eventually(Duration::from_secs(20), || get("/live/chunky/manifest.mpd").text().matches("<S ").count() >= 6));

    let mpd = get("/live/chunky/manifest.mpd");
    assert_eq!(mpd.header("content-type"), Some("application/dash+xml"));
    let text = mpd.text();
    for attr in [
        "type=\"dynamic\"",
        "availabilityTimeOffset=\"1.800\"",
        "availabilityTimeComplete=\"false\"",
        "<ServiceDescription",
        "<Latency",
        "urn:mpeg:dash:utc:http-iso:2014",
        "$Number$",
    ] {
        assert!(text.contains(attr), "missing {attr}:\n{text}");
    }
    let time = get("/time").text();
    assert!(time.ends_with('Z') && time.contains('T'), "{time}");

    // The last timeline entry is the segment being written: fetch it chunked, as it grows.
    let template = text.lines().find(|l| l.contains("<SegmentTemplate") && l.contains("video/")).unwrap();
    let media = template.split("media=\"").nth(1).unwrap().split('"').next().unwrap();
    let start: u64 = template.split("startNumber=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
    let video_set = text.split("contentType=\"video\"").nth(1).unwrap().split("</AdaptationSet>").next().unwrap();
    let entries = video_set.matches("<S ").count() as u64;
    let growing = start + entries - 1;
    let response = get(&format!("/live/chunky/{}", media.replace("$Number$", &growing.to_string())));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("transfer-encoding"), Some("chunked"), "{}", response.head);
    assert!(response.elapsed > Duration::from_millis(200), "the response lasted until the segment was complete");
    let body = dechunk(&response.body);
    assert_eq!(&body[4..8], b"styp");
    assert!(body.windows(4).filter(|w| w == b"moof").count() >= 2, "several CMAF chunks");
    // A complete segment has its length.
    let complete = get(&format!("/live/chunky/{}", media.replace("$Number$", &(growing - 1).to_string())));
    assert_eq!(complete.status, 200);
    assert_eq!(complete.header("content-length").unwrap().parse::<usize>().unwrap(), complete.body.len());
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[line_end + 2..line_end + 2 + size]);
        body = &body[line_end + 2 + size + 2..];
    }
}

/// Headless Chromium on `/play/<name>?mode=…` (tests/browser/play.mjs): the page's `rillStats`.
fn play_in_chromium(server: &Server, name: &str, mode: &str) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{}/play/{name}?mode={mode}", server.http);
    browser_probe("play.mjs", &[&url, "40"], &[("PLAY_ENOUGH", "8")], Duration::from_secs(90))
}

#[test]
fn chromium_plays_the_player_page_over_ll_hls_and_dash() {
    let _serial = serial();
    let server = Server::start("open", &[]);
    let _publisher = publish(&server.rtmp_url("tv"), 120, "640x360");
    wait_for_playlist(&server, "/live/tv/index.m3u8");
    for mode in ["hls", "dash"] {
        let report = play_in_chromium(&server, "tv", mode);
        let last = &report["final"];
        assert_eq!(last["mode"], mode, "{report}");
        assert!(last["fatalError"].is_null(), "{mode}: {report}");
        assert!(last["framesDecoded"].as_u64().unwrap_or(0) > 100, "{mode}: {report}");
        assert!(last["width"] == 640 && last["height"] == 360, "{mode}: {report}");
        // The picture advanced over the sampled seconds, and the page knows its latency.
        let samples = report["samples"].as_array().unwrap();
        let times: Vec<f64> = samples.iter().filter_map(|s| s["currentTime"].as_f64()).collect();
        assert!(times.last().unwrap() - times.first().unwrap() > 3.0, "{mode}: {report}");
        let latency = last["latency"].as_f64().expect("latency is reported");
        assert!(latency > 0.0 && latency < 5.0, "{mode}: latency {latency}: {report}");
        assert!(report["offOriginRequests"].as_array().unwrap().is_empty(), "{report}");
    }
}
