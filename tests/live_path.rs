//! End-to-end tests of the live path with real peers: ffmpeg publishes over RTMP, ffmpeg decodes
//! over HTTP-FLV and RTMP play. They compete for CPU, so each holds [`common::serial`].

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(40);

fn create_stream(server: &Server, name: &str) -> String {
    let (status, created) = server.api("POST", "/api/v1/streams", Some(&format!(r#"{{"name":"{name}"}}"#)));
    assert_eq!(status, 201, "{created}");
    assert!(created["rtmp_url"].as_str().unwrap().ends_with(created["key"].as_str().unwrap()));
    created["key"].as_str().unwrap().to_string()
}

fn wait_live(server: &Server, name: &str) {
    assert!(
        eventually(Duration::from_secs(15), || server.stream(name)["state"] == "live"),
        "{name} never went live:\n{}",
        server.log()
    );
}

#[test]
fn publish_then_two_viewers_decode_over_http_flv_and_rtmp() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let key = create_stream(&server, "show");
    let _publisher = publish(&server.rtmp_url(&key), 30, "1280x720");
    wait_live(&server, "show");

    let flv_url = server.flv_url("show");
    let rtmp_url = server.rtmp_url("show");
    let flv = thread::spawn(move || decode(&flv_url, 6, T));
    let rtmp = thread::spawn(move || decode(&rtmp_url, 6, T));
    assert!(
        eventually(Duration::from_secs(10), || server.stream("show")["viewers_total"] == 2),
        "API should count both viewers: {}",
        server.stream("show")
    );
    let listed = server.stream("show");
    assert_eq!(listed["viewers"]["http-flv"], 1);
    assert_eq!(listed["viewers"]["rtmp"], 1);
    assert_eq!(listed["video"]["codec"], "h264");
    assert_eq!(listed["video"]["width"], 1280);
    assert_eq!(listed["video"]["height"], 720);
    assert_eq!(listed["audio"]["codec"], "aac");
    assert_eq!(listed["publisher"]["protocol"], "rtmp");
    assert!(listed["publisher"]["address"].as_str().unwrap().starts_with("127.0.0.1:"));

    for (protocol, decoded) in [("http-flv", flv.join().unwrap()), ("rtmp", rtmp.join().unwrap())] {
        assert!(decoded.frames >= 170, "{protocol}: decoded {} frames in 6 s: {decoded:?}", decoded.frames);
        assert_eq!(decoded.dimensions.as_deref(), Some("1280x720"), "{protocol}");
    }
    let listed = server.stream("show");
    assert!(listed["ingest_kbps"].as_f64().unwrap() > 300.0, "{listed}");
    assert!(listed["video"]["fps"].as_f64().unwrap() > 20.0, "{listed}");
}

#[test]
fn wrong_keys_and_hostile_names_are_refused() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let key = create_stream(&server, "real");

    // Unknown key: ffmpeg gets an RTMP error status and gives up; the key is not logged.
    let out = publish(&server.rtmp_url("not-the-key"), 5, "320x240").wait(T);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown stream key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!server.log().contains("not-the-key"), "a refused key must not be logged");
    assert_eq!(server.metric("rill_auth_failures_total{kind=\"publish_key\"}"), 1.0);
    // The name instead of the key is refused too.
    let out = publish(&server.rtmp_url("real"), 5, "320x240").wait(T);
    assert!(!out.status.success());
    // A 300-character key is over the name limit: the connection is closed.
    let out = publish(&server.rtmp_url(&"k".repeat(300)), 5, "320x240").wait(T);
    assert!(!out.status.success());

    for bad in ["../x", &"a".repeat(200), "%00", "a%2Fb", "x%20y"] {
        let (status, body) = server.api("POST", "/api/v1/streams", Some(&format!(r#"{{"name":"{bad}"}}"#)));
        assert_eq!(status, 400, "{bad}: {body}");
        let (status, _) = server.get(&format!("/live/{bad}.flv"));
        assert!(status == 400 || status == 404, "{bad}: {status}");
    }
    let (status, _) = server.api("POST", "/api/v1/streams", Some("not json"));
    assert_eq!(status, 400);
    let (status, _) = http_request(server.http, "GET", "/api/v1/streams", None, Some("wrong-token"));
    assert_eq!(status, 401);
    let (status, _) = http_request(server.http, "GET", "/api/v1/streams", None, None);
    assert_eq!(status, 401);
    let (status, _) = server.get("/live/nobody.flv");
    assert_eq!(status, 404);

    // The real key still works after all of that.
    let _publisher = publish(&server.rtmp_url(&key), 20, "320x240");
    wait_live(&server, "real");
}

fn rtmp_handshake(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536).map(|i| (i * 7 % 251) as u8));
    c0c1[1..9].fill(0);
    s.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    s.read_exact(&mut s0s1s2).unwrap();
    s.write_all(&s0s1s2[1..1537]).unwrap();
    s
}

/// True when the server closes the connection (EOF or reset) within 10 s.
fn closed_by_server(mut s: TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
    false
}

#[test]
fn malformed_rtmp_closes_only_the_offending_connection() {
    let _serial = serial();
    let mut server = Server::start("open", &[("RILL_RTMP_HANDSHAKE_TIMEOUT_S", "3")]);
    let _publisher = publish(&server.rtmp_url("steady"), 40, "640x360");
    wait_live(&server, "steady");
    let flv_url = server.flv_url("steady");
    let viewer = thread::spawn(move || decode(&flv_url, 12, T));

    // Random bytes instead of a handshake.
    let mut s = TcpStream::connect(("127.0.0.1", server.rtmp)).unwrap();
    let garbage: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let _ = s.write_all(&garbage);
    assert!(closed_by_server(s), "random bytes must close the connection");
    // A truncated handshake: the server gives up after its handshake timeout.
    let mut s = TcpStream::connect(("127.0.0.1", server.rtmp)).unwrap();
    s.write_all(&[3, 0, 0, 0]).unwrap();
    assert!(closed_by_server(s), "a truncated handshake must time out");
    // A valid handshake, then SetChunkSize 0x7fffffff.
    let mut s = rtmp_handshake(server.rtmp);
    s.write_all(&[0x02, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]).unwrap();
    assert!(closed_by_server(s), "a huge chunk size must close the connection");
    // A valid handshake, then a message header claiming 16 MiB.
    let mut s = rtmp_handshake(server.rtmp);
    s.write_all(&[0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0, 1, 2, 3]).unwrap();
    assert!(closed_by_server(s), "an oversized message must close the connection");
    // A command message with 3000 levels of nested AMF0 objects (stack exhaustion attempt).
    let mut s = rtmp_handshake(server.rtmp);
    let mut amf = vec![0x02, 0, 7];
    amf.extend_from_slice(b"connect");
    amf.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    for _ in 0..3000 {
        amf.extend_from_slice(&[0x03, 0, 1, b'a']);
    }
    let len = (amf.len() as u32).to_be_bytes();
    let mut msg = vec![0x03, 0, 0, 0, len[1], len[2], len[3], 0x14, 0, 0, 0, 0];
    for (i, chunk) in amf.chunks(128).enumerate() {
        if i > 0 {
            msg.push(0xc3);
        }
        msg.extend_from_slice(chunk);
    }
    s.write_all(&msg).unwrap();
    assert!(closed_by_server(s), "an oversized command must close the connection");

    assert!(server.alive(), "server must survive:\n{}", server.log());
    let decoded = viewer.join().unwrap();
    assert!(decoded.frames >= 330, "the other stream's viewer kept decoding: {decoded:?}");
    assert!(server.metric("rill_protocol_errors_total{protocol=\"rtmp\"}") >= 3.0);
}

#[test]
fn stalled_viewer_does_not_slow_a_fast_one_and_memory_stays_bounded() {
    let _serial = serial();
    let server = Server::start("open", &[("RILL_HTTP_WRITE_TIMEOUT_S", "4")]);
    let _publisher = publish(&server.rtmp_url("busy"), 60, "640x360");
    wait_live(&server, "busy");
    let rss_before = server.rss_kib();

    // A viewer that asks for the stream and never reads a byte, with a tiny receive buffer.
    let mut s = TcpStream::connect(("127.0.0.1", server.http)).unwrap();
    s.write_all(b"GET /live/busy.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(eventually(Duration::from_secs(5), || server.stream("busy")["viewers_total"] == 1));

    let started = Instant::now();
    let decoded = decode(&server.flv_url("busy"), 10, T);
    let elapsed = started.elapsed();
    assert!(decoded.frames >= 290, "fast viewer decoded {} frames of 300: {decoded:?}", decoded.frames);
    assert!(elapsed < Duration::from_secs(16), "fast viewer took {elapsed:?} for 10 s of video");

    // The stalled viewer is cut off by the write timeout; its memory is not held.
    assert!(
        eventually(Duration::from_secs(20), || server.stream("busy")["viewers_total"] == 0),
        "stalled viewer should be disconnected: {}",
        server.stream("busy")
    );
    let rss_after = server.rss_kib();
    assert!(rss_after < rss_before + 40 * 1024, "RSS grew from {rss_before} KiB to {rss_after} KiB");
    drop(s);
}

#[test]
fn publisher_reconnect_within_grace_keeps_the_viewer() {
    let _serial = serial();
    let server = Server::start("open", &[("RILL_BUS_RECONNECT_GRACE_S", "5")]);
    let first = publish(&server.rtmp_url("comeback"), 6, "640x360");
    wait_live(&server, "comeback");
    let url = server.flv_url("comeback");
    // No -t limit that the first session alone could satisfy: 400 frames need both sessions.
    let viewer = thread::spawn(move || decode(&url, 400, Duration::from_secs(60)));
    let out = first.wait(T);
    assert!(out.status.success(), "first session: {}", String::from_utf8_lossy(&out.stderr));
    thread::sleep(Duration::from_secs(1));
    assert_eq!(server.stream("comeback")["state"], "reconnecting");
    assert_eq!(server.stream("comeback")["viewers_total"], 1, "the viewer waits through the gap");
    let second = publish(&server.rtmp_url("comeback"), 8, "640x360");
    let out = second.wait(T);
    assert!(out.status.success(), "second session: {}", String::from_utf8_lossy(&out.stderr));
    // After the grace period the stream ends and the viewer's FLV ends cleanly.
    let decoded = viewer.join().unwrap();
    assert!(decoded.frames >= 280, "viewer decoded frames from both sessions: {decoded:?}");
    assert!(eventually(Duration::from_secs(10), || server.stream("comeback").is_null()));
}

#[test]
fn sigterm_stops_the_server_promptly_while_viewers_watch() {
    let _serial = serial();
    let mut server = Server::start("open", &[]);
    let _publisher = publish(&server.rtmp_url("live1"), 60, "320x240");
    wait_live(&server, "live1");
    let url = server.flv_url("live1");
    let viewer = thread::spawn(move || decode(&url, 60, T));
    assert!(eventually(Duration::from_secs(10), || server.stream("live1")["viewers_total"] == 1));
    let stop = Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap().success());
    assert!(eventually(Duration::from_secs(10), || !server.alive()), "rill still running 10 s after SIGTERM");
    assert!(stop.elapsed() < Duration::from_secs(8), "took {:?}", stop.elapsed());
    let decoded = viewer.join().unwrap();
    assert!(decoded.frames > 0 && decoded.elapsed < Duration::from_secs(40), "the viewer's stream ended: {decoded:?}");
}

#[test]
fn api_streams_persist_kick_and_rotate() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let key = create_stream(&server, "persisted");
    let (status, _) = server.api("POST", "/api/v1/streams", Some(r#"{"name":"persisted"}"#));
    assert_eq!(status, 409);
    let server = server.restart();
    assert_eq!(server.stream("persisted")["state"], "offline");

    let publisher = publish(&server.rtmp_url(&key), 60, "320x240");
    wait_live(&server, "persisted");
    let (status, _) = server.api("POST", "/api/v1/streams/persisted/kick", None);
    assert_eq!(status, 204);
    let kicked_at = Instant::now();
    let out = publisher.wait(Duration::from_secs(30));
    assert!(kicked_at.elapsed() < Duration::from_secs(20), "a kicked publisher is disconnected at once");
    assert!(!out.status.success(), "ffmpeg reports the lost connection");

    let (status, rotated) = server.api("POST", "/api/v1/streams/persisted/key", None);
    assert_eq!(status, 200);
    assert_ne!(rotated["key"], key.as_str());
    let out = publish(&server.rtmp_url(&key), 5, "320x240").wait(T);
    assert!(!out.status.success(), "the old key is refused after rotation");

    let (status, _) = server.api("DELETE", "/api/v1/streams/persisted", None);
    assert_eq!(status, 204);
    assert!(server.stream("persisted").is_null());
    let (status, _) = server.api("DELETE", "/api/v1/streams/persisted", None);
    assert_eq!(status, 404);
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    for name in [
        "rill_viewers{protocol=\"http-flv\"}",
        "rill_bytes_sent_total",
        "rill_slow_viewer_frames_dropped_total",
        "rill_auth_failures_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
}

/// OBS's RTMP output descends from librtmp; GStreamer's `rtmpsink` is librtmp itself. Its
/// command sequence (releaseStream, FCPublish, createStream, publish, @setDataFrame) and
/// chunking differ from ffmpeg's native client.
#[test]
fn librtmp_publisher_like_obs_is_accepted() {
    let _serial = serial();
    let server = Server::start("keys", &[]);
    let key = create_stream(&server, "obsish");
    let location = format!("location={} live=1", server.rtmp_url(&key));
    let _publisher = Peer::new(
        std::process::Command::new("gst-launch-1.0")
            .args([
                "-q",
                "-e",
                "videotestsrc",
                "is-live=true",
                "num-buffers=900",
                "!",
                "video/x-raw,width=640,height=360,framerate=30/1",
            ])
            .args(["!", "x264enc", "tune=zerolatency", "speed-preset=ultrafast", "key-int-max=30", "!", "h264parse"])
            .args(["!", "flvmux", "name=m", "streamable=true", "!", "rtmpsink", &location])
            .args(["audiotestsrc", "is-live=true", "!", "audioconvert", "!", "voaacenc", "!", "aacparse", "!", "m."])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gst-launch-1.0 is installed (scripts/test.sh installs it)"),
    );
    wait_live(&server, "obsish");
    let decoded = decode(&server.flv_url("obsish"), 5, T);
    assert!(decoded.frames >= 140, "decoded {} frames of 150: {decoded:?}", decoded.frames);
    assert_eq!(decoded.dimensions.as_deref(), Some("640x360"));
    let listed = server.stream("obsish");
    assert_eq!(listed["video"]["codec"], "h264");
    assert_eq!(listed["audio"]["codec"], "aac");
}

#[test]
fn rtmps_publish_and_play_with_a_self_signed_certificate() {
    let _serial = serial();
    let dir = std::env::temp_dir().join(format!("rill-rtmps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let server =
        Server::start("keys", &[("RILL_RTMPS_LISTEN", &listen), ("RILL_RTMPS_CERT", &cert), ("RILL_RTMPS_KEY", &key)]);
    let (status, created) = server.api("POST", "/api/v1/streams", Some(r#"{"name":"secure"}"#));
    assert_eq!(status, 201, "{created}");
    let stream_key = created["key"].as_str().unwrap();

    // Not TLS on the RTMPS port: that connection fails, nothing else does.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.write_all(&[3u8; 1537]).unwrap();
    // A wrong key over TLS is refused like over RTMP.
    let refused = publish(&format!("rtmps://127.0.0.1:{port}/live/wrong-key"), 5, "320x240").wait(T);
    assert!(!refused.status.success(), "a wrong key was accepted over RTMPS");

    let _publisher = publish(&format!("rtmps://127.0.0.1:{port}/live/{stream_key}"), 30, "640x360");
    wait_live(&server, "secure");
    assert_eq!(server.stream("secure")["publisher"]["protocol"], "rtmps");
    let over_flv = decode(&server.flv_url("secure"), 5, T);
    assert!(over_flv.frames >= 140, "HTTP-FLV decoded {} frames: {}", over_flv.frames, over_flv.stderr);
    let over_rtmps = decode(&format!("rtmps://127.0.0.1:{port}/live/secure"), 5, T);
    assert!(over_rtmps.frames >= 140, "RTMPS play decoded {} frames: {}", over_rtmps.frames, over_rtmps.stderr);
    assert!(server.log().contains("TLS handshake failed"), "{}", server.log());
    std::fs::remove_dir_all(&dir).unwrap();
}
