//! Access control end to end with real clients: a stream that plays with a token only
//! (`PATCH /api/v1/streams/<name>` `{"playback": "token"}`) is published with a publish token
//! over RTMP, then ffmpeg reads it over HTTP-FLV, RTMP play, SRT read, LL-HLS and DASH: each
//! refuses no token, an expired token, a token for another stream and a tampered token (with the
//! protocol's own error and a reason), and plays with a good one. An LL-HLS session outlives its
//! play token: the session token Rill carries into the child URLs keeps it playing.

mod common;

use common::*;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(40);

fn mint(server: &Server, body: &str) -> String {
    let (status, minted) = server.api("POST", "/api/v1/tokens", Some(body));
    assert_eq!(status, 201, "{minted}");
    assert!(minted["expires_at"].as_u64().unwrap() > 1_700_000_000, "{minted}");
    minted["token"].as_str().unwrap().to_string()
}

/// `token` with its payload swapped for `other`'s, the signature kept.
fn tampered(token: &str, other: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let other: Vec<&str> = other.split('.').collect();
    format!("{}.{}.{}", parts[0], other[1], parts[2])
}

/// The read URL of stream `name` over `protocol`, with `token` where that protocol carries it.
fn url(server: &Server, protocol: &str, name: &str, token: Option<&str>) -> String {
    let q = |sep: char| token.map(|t| format!("{sep}token={t}")).unwrap_or_default();
    match protocol {
        "flv" => format!("http://127.0.0.1:{}/live/{name}.flv{}", server.http, q('?')),
        "rtmp" => format!("rtmp://127.0.0.1:{}/live/{name}{}", server.rtmp, q('?')),
        "srt" => format!("srt://127.0.0.1:{}?streamid=read:live/{name}{}", server.srt, q('?')),
        "hls" => format!("http://127.0.0.1:{}/live/{name}/index.m3u8{}", server.http, q('?')),
        "dash" => format!("http://127.0.0.1:{}/live/{name}/manifest.mpd{}", server.http, q('?')),
        _ => unreachable!(),
    }
}

#[test]
fn a_token_stream_refuses_bad_tokens_and_plays_good_ones_on_every_egress() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let (status, created) = server.api("POST", "/api/v1/streams", Some(r#"{"name":"paid"}"#));
    assert_eq!(status, 201, "{created}");
    let (status, patched) = server.api("PATCH", "/api/v1/streams/paid", Some(r#"{"playback":"token"}"#));
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["playback"], "token");

    // Publish with a publish token beside the name (no stream key); a play token cannot publish.
    let play_only = mint(&server, r#"{"action":"play","stream":"paid","ttl_s":300}"#);
    let refused =
        publish(&format!("rtmp://127.0.0.1:{}/live/paid?token={play_only}", server.rtmp), 3, "320x240").wait(T);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the token is for another action"), "{stderr}");
    let publish_token = mint(&server, r#"{"action":"publish","stream":"paid","ttl_s":300}"#);
    let _publisher =
        publish(&format!("rtmp://127.0.0.1:{}/live/paid?token={publish_token}", server.rtmp), 150, "640x360");
    assert!(
        eventually(Duration::from_secs(15), || server.stream("paid")["state"] == "live"),
        "never live:\n{}",
        server.log()
    );
    assert!(!server.log().contains(&publish_token), "tokens are never logged");

    let good = mint(&server, r#"{"action":"play","stream":"paid","ttl_s":300}"#);
    let other = mint(&server, r#"{"action":"play","stream":"other","ttl_s":300}"#);
    let expired = mint(&server, r#"{"action":"play","stream":"paid","ttl_s":1}"#);
    let forged = tampered(&other, &good);
    std::thread::sleep(Duration::from_secs(2));

    // HTTP answers: 401 without a token, 403 with a bad one, a reason in the body.
    for (path, protocol) in
        [("/live/paid.flv", "flv"), ("/live/paid/index.m3u8", "hls"), ("/live/paid/manifest.mpd", "dash")]
    {
        let (status, body) = server.get(path);
        assert_eq!(
            (status, body.trim()),
            (401, "access denied: a token is needed (this stream plays with a token only)")
        );
        for (token, reason) in [(&expired, "token expired"), (&other, "another stream"), (&forged, "signature")] {
            let (status, body) = server.get(&format!("{path}?token={token}"));
            assert_eq!(status, 403, "{path}: {body}");
            assert!(body.contains(reason), "{path}: {body}");
        }
        assert_eq!(
            server.metric(&format!("rill_access_denied_total{{protocol=\"{protocol}\",reason=\"missing_token\"}}")),
            1.0
        );
    }
    let whep =
        http_raw_request(server.http, "POST", "/whep/paid", Some("v=0\r\n"), &[("Content-Type", "application/sdp")]);
    assert_eq!(whep.status, 401, "{}", whep.text());
    let bearer = format!("Bearer {other}");
    let whep = http_raw_request(
        server.http,
        "POST",
        "/whep/paid",
        Some("v=0\r\n"),
        &[("Content-Type", "application/sdp"), ("Authorization", &bearer)],
    );
    assert_eq!(whep.status, 403, "{}", whep.text());

    // ffmpeg is refused on every egress, with each bad token.
    for protocol in ["flv", "rtmp", "srt", "hls", "dash"] {
        for (what, token) in [
            ("no token", None),
            ("expired", Some(&expired)),
            ("other stream", Some(&other)),
            ("tampered", Some(&forged)),
        ] {
            let started = Instant::now();
            let decoded =
                decode(&url(&server, protocol, "paid", token.map(String::as_str)), 2, Duration::from_secs(20));
            assert_eq!(decoded.frames, 0, "{protocol} with {what}: played\n{}", decoded.stderr);
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{protocol} with {what}: refusal took {:?}",
                started.elapsed()
            );
            if protocol == "rtmp" {
                assert!(decoded.stderr.contains("access denied"), "rtmp with {what}: {}", decoded.stderr);
            }
        }
    }
    for (protocol, reason) in
        [("rtmp", "expired"), ("srt", "wrong_resource"), ("hls", "signature"), ("dash", "missing_token")]
    {
        let metric = format!("rill_access_denied_total{{protocol=\"{protocol}\",reason=\"{reason}\"}}");
        assert!(server.metric(&metric) >= 1.0, "{metric}");
    }
    assert!(!server.log().contains(&good), "tokens are never logged");

    // And plays with a good one.
    for protocol in ["flv", "rtmp", "srt", "hls", "dash"] {
        let decoded = decode(&url(&server, protocol, "paid", Some(&good)), 3, T);
        assert!(decoded.frames >= 60, "{protocol}: {} frames\n{}", decoded.frames, decoded.stderr);
        assert_eq!(decoded.dimensions.as_deref(), Some("640x360"), "{protocol}");
    }
}

#[test]
fn an_ll_hls_session_outlives_its_play_token_with_no_token_in_later_urls() {
    let _serial = serial();
    let server = Server::start("open", &[("RILL_ACCESS_PLAYBACK", "token")]);
    let _publisher = publish(&server.rtmp_url("live1"), 60, "640x360");
    assert!(eventually(Duration::from_secs(15), || server.stream("live1")["state"] == "live"), "{}", server.log());
    // Wait for a complete segment so the playlists are there.
    let short = mint(&server, r#"{"action":"play","stream":"live1","ttl_s":6}"#);
    assert!(eventually(Duration::from_secs(10), || server
        .get(&format!("/live/live1/video/media.m3u8?token={short}"))
        .0
        == 200));

    // The multivariant playlist carries a session token (not the play token) into every URI.
    let (status, multivariant) = server.get(&format!("/live/live1/index.m3u8?token={short}"));
    assert_eq!(status, 200, "{multivariant}");
    assert!(!multivariant.contains(&short), "{multivariant}");
    let children: Vec<&str> = multivariant.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    assert!(!children.is_empty(), "{multivariant}");
    for child in &children {
        assert!(child.contains("?token="), "{multivariant}");
        let (status, playlist) = server.get(&format!("/live/live1/{child}"));
        assert_eq!(status, 200, "{child}: {playlist}");
        for line in playlist.lines().filter(|l| l.contains(".m4s") || l.contains(".mp4")) {
            assert!(line.contains("token="), "every part, segment and init URI carries the session: {line}");
        }
    }
    let (status, _) = server.get("/live/live1/video/media.m3u8");
    assert_eq!(status, 401, "a child playlist without the session token is refused");

    // ffmpeg reads for 10 s: the play token expires after 6, the session carries on.
    let started = Instant::now();
    let decoded = decode(&format!("http://127.0.0.1:{}/live/live1/index.m3u8?token={short}", server.http), 10, T);
    assert!(started.elapsed() >= Duration::from_secs(8), "{:?}", started.elapsed());
    assert!(decoded.frames >= 250, "{} frames in 10 s\n{}", decoded.frames, decoded.stderr);
    assert!(!decoded.stderr.contains("403") && !decoded.stderr.contains("401"), "{}", decoded.stderr);
    // A new viewer with the expired play token is refused.
    assert_eq!(server.get(&format!("/live/live1/index.m3u8?token={short}")).0, 403);
}

/// The player page passes `?token=` on: Chromium plays a token stream over LL-HLS (hls.js),
/// DASH (dash.js) and WebRTC (WHEP, as a bearer token), and plays nothing without it.
#[test]
fn the_player_page_plays_a_token_stream_with_its_token() {
    let _serial = serial();
    let server = Server::start("open", &[("RILL_ACCESS_PLAYBACK", "token")]);
    let _publisher = publish(&server.rtmp_url("tv"), 150, "640x360");
    let token = mint(&server, r#"{"action":"play","stream":"tv","ttl_s":600}"#);
    assert!(eventually(Duration::from_secs(15), || {
        server.get(&format!("/live/tv/video/media.m3u8?token={token}")).0 == 200
    }));
    let page = |mode: &str, token: Option<&str>| {
        let token = token.map(|t| format!("&token={t}")).unwrap_or_default();
        let url = format!("http://127.0.0.1:{}/play/tv?mode={mode}{token}", server.http);
        browser_probe("play.mjs", &[&url, "40"], &[("PLAY_ENOUGH", "8")], Duration::from_secs(90))
    };
    for mode in ["hls", "dash", "webrtc"] {
        let report = page(mode, Some(&token));
        let last = &report["final"];
        assert_eq!(last["mode"], mode, "{report}");
        assert!(last["fatalError"].is_null(), "{mode}: {report}");
        let frames = last["framesDecoded"].as_u64().or(last["webrtc"]["framesDecoded"].as_u64()).unwrap_or(0);
        assert!(frames > 100, "{mode}: {report}");
    }
    let refused = page("hls", None);
    assert!(refused["final"]["framesDecoded"].as_u64().unwrap_or(0) == 0, "{refused}");
}

/// A token stream's recording is private and plays with a play token for that video only: its
/// media, its details and its watch page; without a token it does not exist (404), with a token
/// for something else it is refused (403), and the admin token still opens it.
#[test]
fn a_token_streams_recording_plays_with_a_video_token_only() {
    let _serial = serial();
    let server = Server::start("open", &[("RILL_ACCESS_PLAYBACK", "token")]);
    let publisher = publish(&server.rtmp_url("club"), 10, "640x360");
    let mut id = String::new();
    assert!(
        eventually(Duration::from_secs(15), || {
            id = server.stream("club")["recording"]["video_id"].as_str().unwrap_or_default().to_string();
            !id.is_empty()
        }),
        "no recording\n{}",
        server.log()
    );
    assert!(publisher.wait(T).status.success());
    let mut video = serde_json::Value::Null;
    assert!(
        eventually(Duration::from_secs(20), || {
            video = server.api("GET", &format!("/api/v1/videos/{id}"), None).1;
            video["status"] == "ready"
        }),
        "{video}"
    );
    assert_eq!(video["visibility"], "private", "a token stream records private videos: {video}");

    // No token: nothing is there. A token for another video, or for the stream: refused.
    for path in ["index.m3u8", "manifest.mpd", "video/index.m3u8", "video/0.m4s", "thumbnail.jpg"] {
        let (status, body) = server.get(&format!("/vod/{id}/{path}"));
        assert_eq!(status, 404, "{path}: {body}");
    }
    assert_eq!(server.get(&format!("/api/v1/videos/{id}")).0, 404);
    let other = mint(&server, r#"{"action":"play","video":"0000000000000000","ttl_s":300}"#);
    let stream = mint(&server, r#"{"action":"play","stream":"club","ttl_s":300}"#);
    for token in [&other, &stream] {
        let (status, body) = server.get(&format!("/vod/{id}/index.m3u8?token={token}"));
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("another stream or video"), "{body}");
        assert_eq!(server.get(&format!("/api/v1/videos/{id}?token={token}")).0, 404);
    }
    let admin = http_raw(server.http, "GET", &format!("/vod/{id}/index.m3u8"), None, Some(ADMIN_TOKEN));
    assert_eq!(admin.status, 200, "the admin token still opens it");

    // A play token for the video: ffmpeg plays HLS and DASH, the session token carried along.
    let good = mint(&server, &format!(r#"{{"action":"play","video":"{id}","ttl_s":300}}"#));
    let (status, details) = server.get(&format!("/api/v1/videos/{id}?token={good}"));
    assert_eq!(status, 200, "{details}");
    let (status, multivariant) = server.get(&format!("/vod/{id}/index.m3u8?token={good}"));
    assert_eq!(status, 200, "{multivariant}");
    assert!(!multivariant.contains(&good), "a session token, not the play token: {multivariant}");
    for file in ["index.m3u8", "manifest.mpd"] {
        let url = format!("http://127.0.0.1:{}/vod/{id}/{file}?token={good}", server.http);
        let decoded = decode_av(&url, 30, T);
        assert!(decoded.video_frames >= 280, "{file}: {} frames\n{}", decoded.video_frames, decoded.stderr);
        assert!(decoded.audio_frames >= 400, "{file}: {} audio frames\n{}", decoded.audio_frames, decoded.stderr);
    }

    // The watch page plays it with its token (hls.js), and shows nothing without.
    let url = format!("http://127.0.0.1:{}/watch/{id}?mode=hls&token={good}", server.http);
    let watched = browser_probe("watch.mjs", &[&url, "4", "40"], &[], Duration::from_secs(60));
    assert_eq!(watched["started"], true, "{watched}");
    assert_eq!(watched["consoleErrors"].as_array().map(Vec::len), Some(0), "{watched}");
    let url = format!("http://127.0.0.1:{}/watch/{id}?mode=hls", server.http);
    let refused = browser_probe("watch.mjs", &[&url, "4", "10"], &[], Duration::from_secs(30));
    assert_eq!(refused["started"], false, "{refused}");
}
