//! WebRTC end to end: Chromium publishes its fake camera over WHIP (`/publish`) and plays over
//! WHEP (`/play/<name>?mode=webrtc`); ffmpeg publishes RTMP and Chromium plays it over WHEP with
//! Opus audio (AAC transcoded); hostile signalling and datagrams.
//!
//! Run one file at a time: `cargo test --test webrtc -- --test-threads=1`.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

const CONF: &str = r#"
[[streams]]
name = "studio"
key = "sk_studio_0001"
"#;

/// One HTTP exchange with an SDP body: (status, lower-cased head, body).
fn sdp_request(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// A browser-like offer (fingerprint and ICE credentials present; nobody will complete ICE).
fn offer(direction: &str, video_codecs: &[(u8, &str, &str)], with_audio: bool) -> String {
    let mut sdp = String::from(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n",
    );
    let fp = "a=fingerprint:sha-256 1F:2E:3D:4C:5B:6A:79:88:97:A6:B5:C4:D3:E2:F1:00:1F:2E:3D:4C:5B:6A:79:88:97:A6:B5:C4:D3:E2:F1:00\r\n";
    let common = |mid: u8| {
        format!(
            "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:Zq3x\r\na=ice-pwd:Hk2sL0q9c8v7b6n5m4a3s2d1\r\na=ice-options:trickle\r\n{fp}a=setup:actpass\r\na=mid:{mid}\r\na={direction}\r\na=rtcp-mux\r\n"
        )
    };
    if with_audio {
        sdp += "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        sdp += &common(0);
        sdp += "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n";
    }
    let pts: Vec<String> = video_codecs.iter().map(|(pt, _, _)| pt.to_string()).collect();
    sdp += &format!("m=video 9 UDP/TLS/RTP/SAVPF {}\r\n", pts.join(" "));
    sdp += &common(1);
    for (pt, name, fmtp) in video_codecs {
        sdp += &format!("a=rtpmap:{pt} {name}/90000\r\na=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\n");
        if !fmtp.is_empty() {
            sdp += &format!("a=fmtp:{pt} {fmtp}\r\n");
        }
    }
    sdp
}

const H264: (u8, &str, &str) = (102, "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f");
const H264_HIGH: (u8, &str, &str) =
    (112, "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f");
const VP8: (u8, &str, &str) = (96, "VP8", "");
const H263: (u8, &str, &str) = (34, "H263", "");

fn wait_live(server: &Server, name: &str, timeout: Duration) -> Value {
    let mut last = Value::Null;
    eventually(timeout, || {
        last = server.stream(name);
        last["state"] == "live" && !last["video"].is_null()
    });
    last
}

fn metric_or_zero(server: &Server, prefix: &str) -> f64 {
    let (_, text) = server.get("/metrics");
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

#[test]
fn browser_publishes_over_whip_and_plays_over_whep() {
    let _serial = serial();
    let server = Server::start_with_conf("keys", CONF, &[]);
    let base = format!("http://127.0.0.1:{}", server.http);
    let probe = {
        let base = base.clone();
        std::thread::spawn(move || {
            browser_probe(
                "webrtc.mjs",
                &[&base, "studio", "sk_studio_0001", "30"],
                &[("HOLD", "8")],
                Duration::from_secs(90),
            )
        })
    };
    // The browser's stream is live on the Bus as a WebRTC publisher, with H.264 video.
    let stream = wait_live(&server, "studio", Duration::from_secs(30));
    assert_eq!(stream["publisher"]["protocol"], "webrtc", "{stream}\n{}", server.log());
    assert_eq!(stream["video"]["codec"], "h264", "{stream}");
    assert_eq!(stream["audio"]["codec"], "opus", "{stream}");
    // ffmpeg decodes it from HTTP-FLV (H.264 passes through to every egress).
    let decoded = decode(&server.flv_url("studio"), 3, Duration::from_secs(20));
    assert!(decoded.frames > 30, "FLV decode of the WHIP stream: {decoded:?}");
    // While the browser watches over WHEP, the API lists both sessions.
    let mut both = Value::Null;
    let listed = eventually(Duration::from_secs(20), || {
        both = server.stream("studio");
        both["viewers"]["webrtc"] == 1
            && both["webrtc_sessions"].as_array().is_some_and(|s| {
                s.iter().any(|x| x["kind"] == "whip" && x["state"] == "connected")
                    && s.iter().any(|x| x["kind"] == "whep" && x["state"] == "connected")
            })
    });
    assert!(listed, "{both}");
    let out = probe.join().unwrap();
    let publish = &out["publish"];
    assert_eq!(publish["state"], "live", "{out}");
    assert_eq!(publish["videoCodec"], "video/H264", "{out}");
    let final_ = &out["final"];
    assert!(final_["webrtc"]["framesDecoded"].as_u64().unwrap_or(0) > 30, "{out}");
    let times: Vec<f64> = out["samples"].as_array().unwrap().iter().filter_map(|s| s["currentTime"].as_f64()).collect();
    assert!(times.len() >= 3 && times.last() > times.first(), "video time advances: {times:?}");
    assert!(out["consoleErrors"].as_array().unwrap().is_empty(), "{out}");
    eprintln!(
        "WHIP→WHEP: first frame {} ms after page load, jitter buffer {:.0} ms, rtt {} ms",
        out["firstFrameMs"],
        final_["webrtc"]["jitterBufferMs"].as_f64().unwrap_or(f64::NAN),
        final_["webrtc"]["rttMs"]
    );
    // The browser closed: the sessions end (DELETE from the page, or ICE failing).
    assert!(
        eventually(Duration::from_secs(40), || metric_or_zero(&server, "rill_webrtc_sessions{kind=\"whip\"}") == 0.0
            && metric_or_zero(&server, "rill_webrtc_sessions{kind=\"whep\"}") == 0.0),
        "sessions left:\n{}",
        server.get("/metrics").1
    );
}

/// Chromium publishes over WHIP with only `codec` offered (`/publish?codec=…`); the API shows
/// the stream live with that video codec. Returns the server, the stream's API entry and the
/// probe's output (the publisher is held live `HOLD` seconds after it went live).
fn publish_with_codec(codec: &str) -> (Server, Value, std::thread::JoinHandle<Value>) {
    let server = Server::start_with_conf("keys", CONF, &[]);
    let base = format!("http://127.0.0.1:{}", server.http);
    let codec_env = codec.to_string();
    let probe = std::thread::spawn(move || {
        browser_probe(
            "webrtc.mjs",
            &[&base, "studio", "sk_studio_0001", "1"],
            &[("HOLD", "15"), ("PLAY", "0"), ("CODEC", &codec_env)],
            Duration::from_secs(60),
        )
    });
    let stream = wait_live(&server, "studio", Duration::from_secs(30));
    assert_eq!(stream["publisher"]["protocol"], "webrtc", "{stream}\n{}", server.log());
    assert_eq!(stream["video"]["codec"], codec, "{stream}\n{}", server.log());
    assert_eq!(stream["audio"]["codec"], "opus", "{stream}");
    (server, stream, probe)
}

#[test]
fn browser_publishes_vp8_over_whip_and_the_api_says_it_is_not_packaged() {
    let _serial = serial();
    let (server, _, probe) = publish_with_codec("vp8");
    // LL-HLS/DASH cannot take VP8: the API says so for the video track.
    let mut stream = Value::Null;
    let said = eventually(Duration::from_secs(20), || {
        stream = server.stream("studio");
        stream["packaging"]["unsupported"]
            .as_array()
            .is_some_and(|u| u.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with("video:") && n.contains("VP8"))))
    });
    assert!(said, "{stream}");
    // Frames flow: the Bus sees video (fps) from the browser.
    let flowing = eventually(Duration::from_secs(15), || {
        stream = server.stream("studio");
        stream["video"]["fps"].as_f64().unwrap_or(0.0) > 5.0 || stream["ingest_kbps"].as_f64().unwrap_or(0.0) > 50.0
    });
    assert!(flowing, "{stream}");
    // HTTP-FLV carries neither VP8 nor Opus: a clear refusal.
    let (status, body) = server.get("/live/studio.flv");
    assert_eq!(status, 406, "{body}");
    assert!(body.contains("vp8") && body.contains("WebRTC"), "{body}");
    let out = probe.join().unwrap();
    assert_eq!(out["publish"]["state"], "live", "{out}");
    assert_eq!(out["publish"]["videoCodec"], "video/VP8", "{out}");
    assert!(out["consoleErrors"].as_array().unwrap().is_empty(), "{out}");
}

/// After [`publish_with_codec`]: LL-HLS serves the stream with `codecs_prefix` in its
/// multivariant playlist and the API reports no unsupported video.
fn assert_packaged(server: &Server, codecs_prefix: &str) {
    let mut multivariant = String::new();
    let packaged = eventually(Duration::from_secs(30), || {
        let (status, body) = server.get("/live/studio/index.m3u8");
        multivariant = body;
        status == 200 && multivariant.contains(codecs_prefix)
    });
    let stream = server.stream("studio");
    assert!(packaged, "{multivariant}\n{stream}\n{}", server.log());
    let unsupported = stream["packaging"]["unsupported"].as_array().cloned().unwrap_or_default();
    assert!(!unsupported.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with("video:"))), "{stream}");
}

#[test]
fn browser_publishes_vp9_over_whip_and_it_is_packaged() {
    let _serial = serial();
    let (server, _, probe) = publish_with_codec("vp9");
    // VP9 has a CMAF binding (vpcC from the keyframe header): LL-HLS serves it, and ffmpeg
    // decodes the segments.
    assert_packaged(&server, "vp09.");
    let url = format!("http://127.0.0.1:{}/live/studio/index.m3u8", server.http);
    let decoded = decode(&url, 2, Duration::from_secs(20));
    assert!(decoded.frames > 10, "LL-HLS decode of the VP9 WHIP stream: {decoded:?}");
    let out = probe.join().unwrap();
    assert_eq!(out["publish"]["videoCodec"], "video/VP9", "{out}");
    assert!(out["consoleErrors"].as_array().unwrap().is_empty(), "{out}");
}

#[test]
fn browser_publishes_av1_over_whip_and_it_is_packaged() {
    let _serial = serial();
    let (server, _, probe) = publish_with_codec("av1");
    // AV1 has a CMAF binding (av1C from the sequence header OBU): LL-HLS serves it, and
    // ffmpeg (dav1d) decodes the segments.
    assert_packaged(&server, "av01.");
    let url = format!("http://127.0.0.1:{}/live/studio/index.m3u8", server.http);
    let decoded = decode(&url, 2, Duration::from_secs(20));
    assert!(decoded.frames > 10, "LL-HLS decode of the AV1 WHIP stream: {decoded:?}");
    let out = probe.join().unwrap();
    assert_eq!(out["publish"]["videoCodec"], "video/AV1", "{out}");
    assert!(out["consoleErrors"].as_array().unwrap().is_empty(), "{out}");
}

#[test]
fn rtmp_source_plays_over_whep_with_opus_audio() {
    let _serial = serial();
    let server = Server::start("open", &[]);
    let base = format!("http://127.0.0.1:{}", server.http);
    let _publisher = publish(&server.rtmp_url("rtmpcam"), 60, "640x360");
    let stream = wait_live(&server, "rtmpcam", Duration::from_secs(20));
    assert_eq!(stream["audio"]["codec"], "aac", "{stream}");
    let out =
        browser_probe("webrtc.mjs", &[&base, "rtmpcam", "-", "25"], &[("PLAY_ENOUGH", "8")], Duration::from_secs(60));
    let w = &out["final"]["webrtc"];
    assert!(w["framesDecoded"].as_u64().unwrap_or(0) > 60, "{out}\n{}", server.log());
    assert!(w["packetsLost"].as_i64().unwrap_or(99) <= 2, "loss on loopback: {out}");
    assert!(
        w["audioPacketsReceived"].as_u64().unwrap_or(0) > 50,
        "Opus audio (AAC transcoded): {out}\n{}",
        server.log()
    );
    assert!(w["audioPacketsLost"].as_i64().unwrap_or(99) <= 2, "{out}");
    let times: Vec<f64> = out["samples"].as_array().unwrap().iter().filter_map(|s| s["currentTime"].as_f64()).collect();
    assert!(times.len() >= 3 && times.last() > times.first(), "video time advances: {times:?}");
    assert!(server.log().contains("audio from the Opus feed"), "{}", server.log());
    eprintln!(
        "RTMP→WHEP: first frame {} ms after page load, jitter buffer {:.0} ms",
        out["firstFrameMs"],
        w["jitterBufferMs"].as_f64().unwrap_or(f64::NAN)
    );
    assert!(metric_or_zero(&server, "rill_webrtc_sessions_total{outcome=\"started\"}") >= 1.0);
}

#[test]
fn refusals_and_hostile_input() {
    let _serial = serial();
    let server = Server::start_with_conf(
        "keys",
        CONF,
        &[("RILL_WEBRTC_SESSION_TIMEOUT_S", "3"), ("RILL_WEBRTC_MAX_SESSIONS", "1500")],
    );
    let port = server.http;
    let good = offer("sendonly", &[VP8, H264], true);
    let key = Some("Bearer sk_studio_0001");
    // Signalling refusals, each with a clear status and reason.
    let (s, _, body) = sdp_request(port, "POST", "/whip/studio", "application/sdp", None, &good);
    assert_eq!(s, 401, "no bearer: {body}");
    let (s, _, body) = sdp_request(port, "POST", "/whip/studio", "application/sdp", Some("Bearer wrong"), &good);
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("unknown stream key"), "{body}");
    let (s, _, body) = sdp_request(port, "POST", "/whip/other", "application/sdp", key, &good);
    assert_eq!(s, 403, "key of another stream: {body}");
    let (s, _, body) = sdp_request(port, "POST", "/whip/studio", "text/plain", key, &good);
    assert_eq!(s, 415, "{body}");
    let (s, _, body) = sdp_request(port, "POST", "/whip/studio", "application/sdp", key, "this is not sdp");
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("malformed SDP offer"), "{body}");
    let (s, _, body) =
        sdp_request(port, "POST", "/whip/studio", "application/sdp", key, &offer("sendonly", &[H263], false));
    assert_eq!(s, 406, "{body}");
    assert!(body.contains("no usable codec") && body.contains("H263/90000"), "{body}");
    let (s, _, body) =
        sdp_request(port, "POST", "/whep/nobody", "application/sdp", None, &offer("recvonly", &[H264], true));
    assert_eq!(s, 404, "{body}");
    let (s, head, _) = sdp_request(port, "OPTIONS", "/whip/studio", "application/sdp", None, "");
    assert_eq!(s, 204);
    assert!(head.contains("access-control-allow-origin: *") && head.contains("access-control-allow-headers"), "{head}");
    // A good offer: 201 with an answer, Location and ETag; a second publisher → 409.
    let (s, head, answer) = sdp_request(port, "POST", "/whip/studio", "application/sdp", key, &good);
    assert_eq!(s, 201, "{answer}\n{}", server.log());
    assert!(head.contains("content-type: application/sdp") && head.contains("etag: \""), "{head}");
    assert!(answer.contains("a=ice-lite") && answer.contains("H264/90000") && !answer.contains("VP8"), "{answer}");
    assert!(answer.contains(&format!(" {} typ host", server.webrtc_udp)), "{answer}");
    let location = head.lines().find_map(|l| l.strip_prefix("location: ")).unwrap().trim().to_string();
    let (s, _, body) = sdp_request(port, "POST", "/whip/studio", "application/sdp", key, &good);
    assert_eq!(s, 409, "{body}");
    let (s, head, _) =
        sdp_request(port, "PATCH", &location, "application/trickle-ice-sdpfrag", key, "a=end-of-candidates\r\n");
    assert_eq!(s, 405, "{head}");
    let (s, _, _) = sdp_request(port, "DELETE", &location, "application/sdp", key, "");
    assert_eq!(s, 200);
    let (s, _, _) = sdp_request(port, "DELETE", &location, "application/sdp", key, "");
    assert!(s == 404 || s == 200, "second DELETE: {s}");

    // A real viewer of an RTMP stream keeps playing through what follows.
    let _publisher = publish(&server.rtmp_url("sk_studio_0001"), 90, "320x240");
    wait_live(&server, "studio", Duration::from_secs(20));
    let base = format!("http://127.0.0.1:{port}");
    let viewer = std::thread::spawn(move || {
        browser_probe("webrtc.mjs", &[&base, "studio", "-", "35"], &[("PLAY_ENOUGH", "0")], Duration::from_secs(80))
    });
    assert!(eventually(Duration::from_secs(20), || server.stream("studio")["viewers"]["webrtc"] == 1), "viewer");
    // 1000 WHEP offers that never complete ICE: answered, then reclaimed after the timeout.
    let started = Instant::now();
    let viewer_offer = offer("recvonly", &[H264_HIGH, H264], true);
    let mut created = 0;
    for _ in 0..1000 {
        let (s, _, body) = sdp_request(port, "POST", "/whep/studio", "application/sdp", None, &viewer_offer);
        assert_eq!(s, 201, "{body}");
        created += 1;
    }
    eprintln!("1000 WHEP offers answered in {:?}", started.elapsed());
    // Random datagrams, fake STUN and junk at the media port meanwhile.
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 1 + (x % 1400) as usize;
        let mut d: Vec<u8> = (0..len).map(|j| (x >> (j % 8 * 8)) as u8 ^ j as u8).collect();
        if i % 4 == 0 && d.len() >= 28 {
            // A STUN header with the magic cookie and a USERNAME of nobody.
            d[0] = 0;
            d[1] = 1;
            d[2] = 0;
            d[3] = 8;
            d[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
            d[20..24].copy_from_slice(&[0, 6, 0, 4]);
            d[24..28].copy_from_slice(b"x:yz");
            d.truncate(28);
        }
        let _ = junk.send_to(&d, ("127.0.0.1", server.webrtc_udp));
    }
    assert!(metric_or_zero(&server, "rill_webrtc_datagrams_total{direction=\"unroutable\"}") > 10_000.0);
    assert!(
        eventually(Duration::from_secs(30), || metric_or_zero(&server, "rill_webrtc_sessions{kind=\"whep\"}") == 1.0),
        "stale sessions reclaimed:\n{}",
        server.get("/metrics").1
    );
    assert!(metric_or_zero(&server, "rill_webrtc_sessions_total{outcome=\"timed_out\"}") >= created as f64);
    assert_eq!(server.stream("studio")["viewers"]["webrtc"], 1, "only the real viewer is left");
    let out = viewer.join().unwrap();
    let samples = out["samples"].as_array().unwrap();
    let decoded: Vec<u64> = samples.iter().filter_map(|s| s["webrtc"]["framesDecoded"].as_u64()).collect();
    assert!(decoded.len() > 10, "{out}");
    // Frames kept being decoded over the last samples (after the flood and the reclaim).
    let tail = &decoded[decoded.len() - 5..];
    assert!(tail.last() > tail.first(), "viewer kept playing: {decoded:?}");
    assert!(out["final"]["webrtc"]["packetsLost"].as_i64().unwrap_or(99) <= 5, "{out}");
    let mut server = server;
    assert!(server.alive());
}

/// Chromium's WHEP offer as `whep_offer.mjs` makes it (`env`: VIDEO=0, H264=42e01f, …) for
/// stream `name`, over `seconds` at most.
fn whep_offer(server: &Server, name: &str, env: &[(&str, &str)], seconds: u32) -> Value {
    let base = format!("http://127.0.0.1:{}", server.http);
    let timeout = Duration::from_secs(seconds as u64 + 40);
    browser_probe("whep_offer.mjs", &[&base, name, &seconds.to_string()], env, timeout)
}

fn audio_packets(out: &Value) -> u64 {
    out["final"]["audio"]["packetsReceived"].as_u64().unwrap_or(0)
}

fn frames_decoded(out: &Value) -> u64 {
    out["final"]["video"]["framesDecoded"].as_u64().unwrap_or(0)
}

/// The sessions that used to deliver nothing: an audio-only session whose offer lists video
/// first (the answer rejects the video section, and webrtc-rs wrote the ICE candidates into
/// that rejected section, so the browser never connected), and an offer with no video at all.
#[test]
fn audio_only_sessions_get_audio_packets() {
    let _serial = serial();
    let server = Server::start("open", &[]);
    let _publisher = publish_profile(&server.rtmp_url("hi"), 90, "640x360", Profile::High, 48_000);
    wait_live(&server, "hi", Duration::from_secs(20));
    let out = whep_offer(&server, "hi", &[("VIDEO", "0")], 15);
    assert_eq!(out["status"], 201, "{out}\n{}", server.log());
    assert!(audio_packets(&out) > 50, "audio-only offer: {out}\n{}", server.log());
    assert!(out["consoleErrors"].as_array().unwrap().is_empty(), "{out}");
    // Video first, audio second, as Chromium's player page offers: the audio section carries
    // the candidates whatever happens to the video section.
    let out = whep_offer(&server, "hi", &[], 15);
    assert_eq!(out["status"], 201, "{out}\n{}", server.log());
    assert_eq!(out["final"]["connection"], "connected", "{out}");
    assert!(audio_packets(&out) > 50, "video+audio offer: {out}\n{}", server.log());
}

/// The WHEP sessions of stream `name` in the API.
fn whep_sessions(server: &Server, name: &str) -> Vec<Value> {
    let stream = server.stream(name);
    stream["webrtc_sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s["kind"] == "whep")
        .collect()
}

/// Publishers as encoders send them: Constrained Baseline (x264 `ultrafast`), Main, and High
/// (x264 `veryfast`, OBS's default), with 44.1 and 48 kHz AAC. Chromium plays each over WHEP
/// with its own offer: video frames decoded and Opus packets received, the source's video
/// passed through (Chromium decodes Main as `4d001f` and High as High 4:4:4 Predictive `f4001f`).
#[test]
fn every_profile_plays_in_chromium_over_whep() {
    let _serial = serial();
    let server = Server::start("open", &[]);
    let cases = [
        ("base44", Profile::Baseline, 44_100, "42"),
        ("main48", Profile::Main, 48_000, "4d"),
        ("high48", Profile::High, 48_000, "64"),
        ("high44", Profile::High, 44_100, "64"),
    ];
    for (name, profile, rate, idc) in cases {
        let _publisher = publish_profile(&server.rtmp_url(name), 60, "480x270", profile, rate);
        let stream = wait_live(&server, name, Duration::from_secs(20));
        let codecs = stream["video"]["codecs"].as_str().unwrap_or("").to_string();
        assert!(codecs.starts_with(&format!("avc1.{idc}")), "{profile:?} publisher: {stream}");
        assert_eq!(stream["audio"]["sample_rate"], rate, "{stream}");
        let out = whep_offer(&server, name, &[("ENOUGH", "4")], 25);
        assert_eq!(out["status"], 201, "{profile:?}: {out}\n{}", server.log());
        assert!(frames_decoded(&out) > 30, "{profile:?} ({codecs}): {out}\n{}", server.log());
        assert!(audio_packets(&out) > 50, "{profile:?} {rate} Hz: {out}");
        assert!(out["consoleErrors"].as_array().unwrap().is_empty(), "{out}");
        eprintln!(
            "{profile:?} {codecs} {rate} Hz: first frame {} ms after the POST, {} frames, {} audio packets, as {}",
            out["firstFrameMs"],
            frames_decoded(&out),
            audio_packets(&out),
            out["final"]["video"]["codec"]
        );
    }
    assert!(
        !server.log().contains("WebRTC rendition (Constrained Baseline H.264) started"),
        "no transcoding for Chromium"
    );
}

/// A viewer offering only Constrained Baseline (`42e01f`, as Firefox does) of a High-profile
/// source gets the WebRTC rendition: one transcode shared by its viewers, listed in the API
/// with the reason, stopped when the last one leaves.
#[test]
fn baseline_only_offer_gets_the_webrtc_rendition() {
    let _serial = serial();
    let server = Server::start("open", &[]);
    let _publisher = publish_profile(&server.rtmp_url("obs"), 90, "640x360", Profile::High, 48_000);
    wait_live(&server, "obs", Duration::from_secs(20));
    let base = format!("http://127.0.0.1:{}", server.http);
    let viewers: Vec<_> = (0..2)
        .map(|_| {
            let base = base.clone();
            std::thread::spawn(move || {
                browser_probe(
                    "whep_offer.mjs",
                    &[&base, "obs", "25"],
                    &[("H264", "42e01f"), ("ENOUGH", "8")],
                    Duration::from_secs(70),
                )
            })
        })
        .collect();
    // Both are listed as getting the rendition, and why.
    let mut sessions = Vec::new();
    let listed = eventually(Duration::from_secs(30), || {
        sessions = whep_sessions(&server, "obs");
        sessions.len() == 2 && sessions.iter().all(|s| s["video"] == "webrtc rendition" && s["state"] == "connected")
    });
    assert!(listed, "{sessions:?}\n{}", server.log());
    let reason = sessions[0]["video_reason"].as_str().unwrap_or("");
    assert!(reason.contains("42e01f") && reason.contains("High"), "{reason}");
    // The stream lists the one rendition, held by both, running at the source's size.
    let mut stream = Value::Null;
    let shown = eventually(Duration::from_secs(10), || {
        stream = server.stream("obs");
        let r = &stream["webrtc_rendition"];
        r["viewers"] == 2 && r["path"] == "live/obs/webrtc" && r["rungs"][0]["width"] == 640
    });
    assert!(shown, "{stream}");
    for v in viewers {
        let out = v.join().unwrap();
        assert_eq!(out["status"], 201, "{out}\n{}", server.log());
        assert!(frames_decoded(&out) > 60, "rendition decoded: {out}\n{}", server.log());
        assert!(audio_packets(&out) > 50, "{out}");
        assert_eq!(out["final"]["video"]["frameWidth"], 640, "the source's size: {out}");
        assert!(out["final"]["video"]["codec"].as_str().unwrap_or("").contains("profile-level-id=42e01f"), "{out}");
        assert!(out["consoleErrors"].as_array().unwrap().is_empty(), "{out}");
        eprintln!("42e01f viewer of a High source: first frame {} ms after the POST", out["firstFrameMs"]);
    }
    let log = server.log();
    assert_eq!(log.matches("WebRTC rendition (Constrained Baseline H.264) started").count(), 1, "shared:\n{log}");
    assert!(
        eventually(Duration::from_secs(20), || server.log().contains("WebRTC rendition stopped: its last viewer left")),
        "released:\n{}",
        server.log()
    );
}

/// With `[webrtc] transcode = false`, an offer that cannot decode the source's profile gets a
/// 406 naming the profile and what the offer has, not a 201 that sends nothing; one that can
/// (Main source, Main entry) is answered.
#[test]
fn undecodable_offer_is_refused_when_webrtc_transcoding_is_off() {
    let _serial = serial();
    let server = Server::start("open", &[("RILL_WEBRTC_TRANSCODE", "false")]);
    let _high = publish_profile(&server.rtmp_url("high"), 40, "320x240", Profile::High, 48_000);
    let _main = publish_profile(&server.rtmp_url("main"), 40, "320x240", Profile::Main, 44_100);
    wait_live(&server, "high", Duration::from_secs(20));
    wait_live(&server, "main", Duration::from_secs(20));
    let port = server.http;
    let baseline_only = offer("recvonly", &[H264], true);
    let (s, _, body) = sdp_request(port, "POST", "/whep/high", "application/sdp", None, &baseline_only);
    assert_eq!(s, 406, "{body}");
    assert!(body.contains("High") && body.contains("42e01f") && body.contains("transcode = false"), "{body}");
    const H264_MAIN: (u8, &str, &str) =
        (104, "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f");
    let (s, _, body) =
        sdp_request(port, "POST", "/whep/high", "application/sdp", None, &offer("recvonly", &[H264, H264_MAIN], true));
    assert_eq!(s, 406, "High needs a High decoder: {body}");
    let (s, _, answer) =
        sdp_request(port, "POST", "/whep/main", "application/sdp", None, &offer("recvonly", &[H264, H264_MAIN], true));
    assert_eq!(s, 201, "{answer}");
    assert!(answer.contains("profile-level-id=4d001f") && !answer.contains("42e01f"), "{answer}");
    // An audio-only offer still plays audio.
    let (s, _, answer) = sdp_request(port, "POST", "/whep/high", "application/sdp", None, &audio_only_offer());
    assert_eq!(s, 201, "{answer}");
}

/// A recvonly offer with audio only.
fn audio_only_offer() -> String {
    let full = offer("recvonly", &[], true);
    full.split("m=video").next().unwrap().to_string()
}

/// VP8, VP9 and AV1 publishers (Chromium over WHIP) play over WHEP to a Chromium viewer
/// offering that codec, as they are; a viewer offering only H.264 is refused (406) saying
/// what the stream is, since WebRTC transcoding takes H.264 and HEVC sources only.
#[test]
fn whip_vp8_vp9_av1_play_over_whep_to_viewers_offering_them() {
    let _serial = serial();
    for codec in ["vp9", "av1", "vp8"] {
        let (server, _, probe) = publish_with_codec(codec);
        let out = whep_offer(&server, "studio", &[("CODEC", codec), ("ENOUGH", "4")], 20);
        assert_eq!(out["status"], 201, "{codec}: {out}\n{}", server.log());
        assert!(frames_decoded(&out) > 20, "{codec} over WHEP: {out}\n{}", server.log());
        assert!(audio_packets(&out) > 20, "{codec}: {out}");
        let negotiated = out["final"]["video"]["codec"].as_str().unwrap_or("").to_ascii_lowercase();
        assert!(negotiated.starts_with(&format!("video/{codec}")), "{codec}: {out}");
        eprintln!("WHIP {codec} → WHEP {codec}: first frame {} ms after the POST", out["firstFrameMs"]);
        let (s, _, body) = sdp_request(
            server.http,
            "POST",
            "/whep/studio",
            "application/sdp",
            None,
            &offer("recvonly", &[H264], true),
        );
        assert_eq!(s, 406, "{codec} to an H.264-only offer: {body}");
        assert!(body.contains(&format!("{codec} video")), "{body}");
        probe.join().unwrap();
    }
}

/// An HEVC source (ffmpeg libx265 over SRT) plays to Chromium, which offers no H.265: the
/// WebRTC rendition (Constrained Baseline H.264) decodes, with Opus audio.
#[test]
fn hevc_source_plays_to_a_browser_without_h265_through_the_rendition() {
    let _serial = serial();
    let server = Server::start("open", &[]);
    let url = format!("srt://127.0.0.1:{}?streamid=publish:live/hevc", server.srt);
    let child = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=480x270:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-x265-params",
            "keyint=30:log-level=error",
        ])
        .args(["-c:a", "aac", "-t", "60", "-f", "mpegts", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ffmpeg");
    let _publisher = Peer::new(child);
    let stream = wait_live(&server, "hevc", Duration::from_secs(20));
    assert_eq!(stream["video"]["codec"], "h265", "{stream}");
    let out = whep_offer(&server, "hevc", &[("ENOUGH", "4")], 25);
    assert_eq!(out["status"], 201, "{out}\n{}", server.log());
    assert!(frames_decoded(&out) > 30, "{out}\n{}", server.log());
    assert!(audio_packets(&out) > 50, "{out}");
    assert!(out["final"]["video"]["codec"].as_str().unwrap_or("").starts_with("video/H264"), "{out}");
    assert!(server.log().contains("video from the WebRTC rendition"), "{}", server.log());
    eprintln!("HEVC source → WHEP H.264 rendition: first frame {} ms after the POST", out["firstFrameMs"]);
}
