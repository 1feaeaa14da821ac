//! RTSP pull end to end: a camera nobody here wrote (GStreamer's RTSP server, Debian's
//! `gir1.2-gst-rtsp-server-1.0`, driven by `tests/rtsp_server.py`) serves a live test pattern
//! (H.264 + AAC or G.711, with Basic credentials); Rill pulls it; ffmpeg decodes it from HTTP-FLV; the
//! camera is stopped and restarted and the source comes back by itself. Credentials never show
//! in the API, metrics or logs.

mod common;

use common::*;
use serde_json::Value;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

const PASSWORD: &str = "pa55-Word-x7";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the test camera (H.264 + AAC) on `port` and waits until it accepts connections.
fn camera(port: u16) -> Peer {
    camera_with(port, "aac")
}

fn camera_with(port: u16, audio: &str) -> Peer {
    let child = Command::new("/usr/bin/python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rtsp_server.py"))
        .args(["--port", &port.to_string(), "--user", "admin", "--password", PASSWORD, "--audio", audio])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("/usr/bin/python3 runs (scripts/deps.sh test)");
    assert!(
        eventually(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "the test camera did not start (needs gir1.2-gst-rtsp-server-1.0, python3-gi)"
    );
    Peer::new(child)
}

fn source(server: &Server, name: &str) -> Value {
    let (status, body) = server.api("GET", &format!("/api/v1/sources/{name}"), None);
    assert_eq!(status, 200, "{body}");
    body
}

fn wait_state(server: &Server, name: &str, state: &str, timeout: Duration) -> Value {
    let mut last = Value::Null;
    let reached = eventually(timeout, || {
        last = source(server, name);
        last["state"] == state
    });
    assert!(reached, "source {name} never became {state}: {last}\n{}", server.log());
    last
}

#[test]
fn camera_is_pulled_and_comes_back_after_a_restart() {
    let _serial = serial();
    let port = free_port();
    let cam = camera(port);
    let server = Server::start("keys", &[("RILL_RTSP_RETRY_MAX_S", "2")]);
    let url = format!("rtsp://admin:{PASSWORD}@127.0.0.1:{port}/cam");

    // Unauthenticated callers cannot add cameras.
    let body = format!(r#"{{"name":"cam1","url":"{url}"}}"#);
    let (status, _) = http_request(server.http, "POST", "/api/v1/sources", Some(&body), None);
    assert_eq!(status, 401);
    let (status, created) = server.api("POST", "/api/v1/sources", Some(&body));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["url"], format!("rtsp://127.0.0.1:{port}/cam"), "credentials are redacted");
    assert_eq!(created["mode"], "always");
    let (status, _) = server.api("POST", "/api/v1/sources", Some(&body));
    assert_eq!(status, 409, "names are unique");

    let added = std::time::Instant::now();
    wait_state(&server, "cam1", "live", Duration::from_secs(15));
    eprintln!("source added → live in {:?}", added.elapsed());
    let decoded = decode_av(&server.flv_url("cam1"), 3, Duration::from_secs(20));
    assert!(decoded.video_frames >= 50, "{decoded:?}");
    assert!(decoded.audio_frames >= 100, "{decoded:?}");
    assert_eq!(decoded.dimensions.as_deref(), Some("320x240"));
    let stream = server.stream("cam1");
    assert_eq!(stream["publisher"]["protocol"], "rtsp", "{stream}");
    assert_eq!(stream["publisher"]["address"], format!("rtsp://127.0.0.1:{port}/cam"));
    assert_eq!(server.metric("rill_publishers{protocol=\"rtsp\"}"), 1.0);
    assert_eq!(server.metric("rill_rtsp_sources{state=\"live\"}"), 1.0);

    // The camera goes away: the source retries with the error in the API. A viewer watching
    // through the outage keeps its connection (the Bus's reconnect grace) and gets pictures
    // from both camera sessions.
    let flv = server.flv_url("cam1");
    let viewer = std::thread::spawn(move || decode(&flv, 8, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_secs(2));
    drop(cam);
    let retrying = wait_state(&server, "cam1", "retrying", Duration::from_secs(15));
    assert!(retrying["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{retrying}");
    assert!(retrying["next_retry_ms"].as_u64().is_some(), "{retrying}");

    // It comes back on the same port: the source reconnects by itself.
    std::thread::sleep(Duration::from_secs(2));
    let restarted = std::time::Instant::now();
    let _cam = camera(port);
    let back = wait_state(&server, "cam1", "live", Duration::from_secs(20));
    eprintln!("camera restart → source live again in {:?} (retry_max_s = 2)", restarted.elapsed());
    assert!(back["reconnects"].as_u64().unwrap() >= 1, "{back}");
    let decoded = decode(&server.flv_url("cam1"), 2, Duration::from_secs(20));
    assert!(decoded.frames >= 30, "{decoded:?}");
    assert!(server.metric("rill_rtsp_reconnects_total") >= 1.0);
    let through = viewer.join().unwrap();
    eprintln!("viewer through the outage: {} frames of 8 s in {:?}", through.frames, through.elapsed);
    assert!(through.frames >= 150, "the viewer saw both sessions: {through:?}");

    // A kick drops the camera connection; an "always" source connects again.
    let before = source(&server, "cam1")["reconnects"].as_u64().unwrap();
    let (status, _) = server.api("POST", "/api/v1/streams/cam1/kick", None);
    assert_eq!(status, 204);
    assert!(eventually(Duration::from_secs(10), || {
        let s = source(&server, "cam1");
        s["state"] == "live" && s["reconnects"].as_u64().unwrap() > before
    }));
    assert!(source(&server, "cam1")["last_error"].as_str().unwrap().contains("kick"));

    // API-created sources survive a restart of the server.
    let server = server.restart();
    wait_state(&server, "cam1", "live", Duration::from_secs(15));

    // Deleting stops the pull and ends the stream.
    let (status, _) = server.api("DELETE", "/api/v1/sources/cam1", None);
    assert_eq!(status, 204);
    let (status, _) = server.api("GET", "/api/v1/sources/cam1", None);
    assert_eq!(status, 404);
    assert!(eventually(Duration::from_secs(5), || server.stream("cam1")["publisher"].is_null()));

    let (_, metrics) = server.get("/metrics");
    let (_, sources) = server.api("GET", "/api/v1/sources", None);
    let (_, streams) = server.api("GET", "/api/v1/streams", None);
    for (what, text) in [
        ("log", server.log()),
        ("metrics", metrics),
        ("sources", sources.to_string()),
        ("streams", streams.to_string()),
    ] {
        assert!(!text.contains(PASSWORD), "the camera password leaked into the {what}");
    }
}

#[test]
fn unreachable_and_invalid_cameras_are_reported_without_harming_the_server() {
    let _serial = serial();
    let server = Server::start("keys", &[("RILL_RTSP_TIMEOUT_S", "2")]);
    let dead = free_port();
    let body = format!(r#"{{"name":"nocam","url":"rtsp://u:{PASSWORD}@127.0.0.1:{dead}/x"}}"#);
    let (status, created) = server.api("POST", "/api/v1/sources", Some(&body));
    assert_eq!(status, 201, "{created}");
    let state = wait_state(&server, "nocam", "retrying", Duration::from_secs(10));
    let error = state["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("connect") || error.contains("refused"), "{state}");
    assert!(eventually(Duration::from_secs(10), || source(&server, "nocam")["reconnects"].as_u64() >= Some(2)));
    assert_eq!(server.metric("rill_rtsp_sources{state=\"retrying\"}"), 1.0);

    // Refused before anything starts: bad name, scheme, mode; none echoes the credentials.
    for (body, needle) in [
        (r#"{"name":"a/b","url":"rtsp://cam/x"}"#.to_string(), "name"),
        (format!(r#"{{"name":"c","url":"http://u:{PASSWORD}@cam/x"}}"#), "scheme"),
        (format!(r#"{{"name":"c","url":"rtsp://u:{PASSWORD}@cam/x","mode":"bogus"}}"#), "JSON"),
    ] {
        let (status, reply) = server.api("POST", "/api/v1/sources", Some(&body));
        assert_eq!(status, 400, "{body}: {reply}");
        let text = reply.to_string();
        assert!(text.contains(needle) && !text.contains(PASSWORD), "{text}");
    }

    // G.711 audio is left out with the reason in the API; the video is pulled.
    let port = free_port();
    let _cam = camera_with(port, "pcmu");
    let body = format!(r#"{{"name":"g711","url":"rtsp://admin:{PASSWORD}@127.0.0.1:{port}/cam"}}"#);
    assert_eq!(server.api("POST", "/api/v1/sources", Some(&body)).0, 201);
    let live = wait_state(&server, "g711", "live", Duration::from_secs(15));
    assert!(live["ignored"][0].as_str().is_some_and(|r| r.contains("G.711")), "{live}");
    assert!(server.log().contains("G.711"), "the log says why the audio is missing");
    let stream = server.stream("g711");
    assert_eq!((stream["video"]["codec"].as_str(), stream["audio"].is_null()), (Some("h264"), true), "{stream}");
    let decoded = decode(&server.flv_url("g711"), 2, Duration::from_secs(15));
    assert!(decoded.frames >= 30, "{decoded:?}");

    // The server is unaffected: an RTMP publisher still works next to the dead camera.
    let (status, created) = server.api("POST", "/api/v1/streams", Some(r#"{"name":"studio"}"#));
    assert_eq!(status, 201);
    let key = created["key"].as_str().unwrap().to_string();
    let publisher = publish(&server.rtmp_url(&key), 8, "320x240");
    assert!(eventually(Duration::from_secs(10), || server.stream("studio")["state"] == "live"));
    let decoded = decode(&server.flv_url("studio"), 2, Duration::from_secs(15));
    assert!(decoded.frames >= 30, "{decoded:?}");
    drop(publisher);
    assert!(!server.log().contains(PASSWORD), "the password leaked into the log");
}

#[test]
fn an_on_demand_camera_is_pulled_only_while_watched() {
    let _serial = serial();
    let port = free_port();
    let _cam = camera(port);
    let server = Server::start("keys", &[("RILL_RTSP_ON_DEMAND_IDLE_S", "3")]);
    let url = format!("rtsp://admin:{PASSWORD}@127.0.0.1:{port}/cam");
    let body = format!(r#"{{"name":"lobby","url":"{url}","mode":"on_demand"}}"#);
    let (status, created) = server.api("POST", "/api/v1/sources", Some(&body));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "idle", "{created}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(source(&server, "lobby")["state"], "idle", "pulled before anyone asked");
    assert!(server.stream("lobby")["publisher"].is_null());

    // The first viewer's request starts the pull and waits for it.
    let decoded = decode(&server.flv_url("lobby"), 3, Duration::from_secs(30));
    assert!(decoded.frames >= 50, "the on-demand viewer decoded {} frames: {}", decoded.frames, decoded.stderr);
    assert_eq!(source(&server, "lobby")["state"], "live");
    // LL-HLS asks for it too, and keeps it while polled.
    let (status, playlist) = server.get("/live/lobby/index.m3u8");
    assert_eq!(status, 200, "{playlist}");

    // Nobody watching for the idle time: the camera is released.
    wait_state(&server, "lobby", "idle", Duration::from_secs(20));
    assert!(
        eventually(Duration::from_secs(15), || server.stream("lobby")["publisher"].is_null()),
        "the stream still has a publisher"
    );
    assert!(server.log().contains("nobody watching: camera released"), "{}", server.log());
    // And comes back for the next viewer, over LL-HLS this time.
    let (status, playlist) = server.get("/live/lobby/index.m3u8");
    assert_eq!(status, 200, "{playlist}");
    assert!(playlist.contains("#EXT-X-STREAM-INF"), "{playlist}");
    assert_eq!(server.metric("rill_rtsp_sources{state=\"idle\"}"), 0.0);
}
