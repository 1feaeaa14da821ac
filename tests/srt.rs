//! SRT end to end: ffmpeg publishes MPEG-TS over SRT in both streamid forms (with and without a
//! passphrase) and reads it back over HTTP-FLV and over SRT (`read:` and `m=request`, streams
//! published over SRT and over RTMP, with no `RCV-DROPPED` or decode error); refusals (wrong or
//! missing passphrase, unknown key, oversized streamid, playback turned off); hostile callers
//! (random payloads, broken TS) leave the server and the other streams untouched.

mod common;

use common::*;
use futures_util::SinkExt;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONF: &str = r#"
[[streams]]
name = "plain"
key = "sk_plain_0001"

[[streams]]
name = "studio"
key = "sk_studio_0001"
srt_passphrase = "studio-passphrase"

[[streams]]
name = "junk"
key = "sk_junk_0001"

[[streams]]
name = "viartmp"
key = "sk_viartmp_0001"
"#;

/// An `srt://` URL for `streamid` (as is: ffmpeg 5.1 passes the option value through undecoded).
fn srt_url(server: &Server, streamid: &str, passphrase: Option<&str>) -> String {
    let mut url = format!("srt://127.0.0.1:{}?streamid={streamid}", server.srt);
    if let Some(p) = passphrase {
        url.push_str(&format!("&passphrase={p}"));
    }
    url
}

/// ffmpeg pushing a test pattern with AAC as MPEG-TS over SRT for `seconds`.
fn srt_publish(url: &str, seconds: u32) -> Peer {
    publish_as(url, seconds, "640x360", "mpegts")
}

fn publisher_protocol(server: &Server, name: &str) -> Option<String> {
    server.stream(name)["publisher"]["protocol"].as_str().map(String::from)
}

fn wait_srt_live(server: &Server, name: &str) {
    assert!(
        eventually(Duration::from_secs(15), || {
            let s = server.stream(name);
            s["publisher"]["protocol"] == "srt" && !s["video"]["codec"].is_null()
        }),
        "{name} never went live over SRT:\n{}",
        server.log()
    );
}

#[test]
fn srt_publish_both_forms_and_read_back_over_flv() {
    let _serial = serial();
    let server = Server::start_with_conf("keys", CONF, &[]);
    let _plain = srt_publish(&srt_url(&server, "publish:live/sk_plain_0001", None), 90);
    wait_srt_live(&server, "plain");
    let listed = server.stream("plain");
    assert!(listed["publisher"]["address"].as_str().unwrap().starts_with("127.0.0.1:"), "{listed}");
    assert_eq!(listed["video"]["codec"], "h264", "{listed}");
    assert_eq!(listed["audio"]["codec"], "aac", "{listed}");
    let play_url = format!("srt://127.0.0.1:{}?streamid=read:live/plain", server.srt);
    assert_eq!(listed["urls"]["srt_play_url"].as_str().unwrap().replace("localhost", "127.0.0.1"), play_url);

    let flv = decode(&server.flv_url("plain"), 6, Duration::from_secs(30));
    assert!(flv.frames >= 150, "HTTP-FLV decoded {} frames: {}", flv.frames, flv.stderr);
    assert_eq!(flv.dimensions.as_deref(), Some("640x360"));

    // Read back over SRT, both forms at once.
    let reads = read_both_forms(&server, "plain");
    assert_clean_reads(&server, "plain", &reads);

    // The access-control form, encrypted.
    let _studio = srt_publish(&srt_url(&server, "#!::r=live/sk_studio_0001,m=publish", Some("studio-passphrase")), 60);
    wait_srt_live(&server, "studio");
    // Decrypted on the way in.
    let read = decode(&server.flv_url("studio"), 6, Duration::from_secs(30));
    assert!(read.frames >= 150, "encrypted stream decoded {} frames: {}", read.frames, read.stderr);
    // And encrypted again on the way out, to an SRT reader with the passphrase.
    let form = "#!::r=live/studio,m=request";
    let url = srt_url(&server, form, Some("studio-passphrase"));
    let encrypted = srt_read(&url, 6, Duration::from_secs(40));
    assert_clean_reads(&server, "studio", &[(form.to_string(), encrypted)]);

    assert_eq!(server.metric("rill_publishers{protocol=\"srt\"}"), 2.0);
    assert_eq!(server.metric("rill_srt_ts_continuity_errors_total"), 0.0);
}

/// What an ffmpeg SRT reader saw: video frames decoded, when the first one came (from the start
/// of ffmpeg), and its stderr (libsrt's log lines such as `RCV-DROPPED` land there too).
#[derive(Debug)]
struct SrtRead {
    frames: usize,
    first_frame: Option<Duration>,
    stderr: String,
}

/// Decodes `seconds` of video from `url` with ffmpeg (framemd5), timing the first frame.
fn srt_read(url: &str, seconds: u32, timeout: Duration) -> SrtRead {
    let start = Instant::now();
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-i", url, "-t", &seconds.to_string()])
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg is installed");
    let first = Arc::new(Mutex::new(None));
    let stdout = child.stdout.take().unwrap();
    let first_seen = first.clone();
    let frames = std::thread::spawn(move || {
        let mut frames = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !line.starts_with('#') && !line.trim().is_empty() {
                first_seen.lock().unwrap().get_or_insert_with(|| start.elapsed());
                frames += 1;
            }
        }
        frames
    });
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let frames = frames.join().unwrap();
    let first_frame = *first.lock().unwrap();
    SrtRead { frames, first_frame, stderr: stderr.join().unwrap() }
}

/// Reads `name` over SRT with `read:live/<name>` and `#!::r=live/<name>,m=request` at once.
fn read_both_forms(server: &Server, name: &str) -> Vec<(String, SrtRead)> {
    let forms = [format!("read:live/{name}"), format!("#!::r=live/{name},m=request")];
    let readers: Vec<_> = forms
        .into_iter()
        .map(|form| {
            let url = srt_url(server, &form, None);
            std::thread::spawn(move || (form, srt_read(&url, 6, Duration::from_secs(40))))
        })
        .collect();
    readers.into_iter().map(|r| r.join().unwrap()).collect()
}

/// What a clean read must not show: libsrt dropping packets, or ffmpeg seeing broken TS/H.264.
const READ_ERRORS: [&str; 6] = [
    "RCV-DROPPED",
    "PES packet size mismatch",
    "non-existing PPS",
    "error while decoding",
    "decode_slice_header error",
    "Packet corrupt",
];

/// ≥ 5 s of video (≥ 150 frames at 30 fps), no loss, no decode error, and the server's sender
/// dropped nothing.
fn assert_clean_reads(server: &Server, name: &str, reads: &[(String, SrtRead)]) {
    for (form, read) in reads {
        assert!(read.frames >= 150, "{name} over SRT ({form}): {} frames:\n{}", read.frames, read.stderr);
        for error in READ_ERRORS {
            assert!(!read.stderr.contains(error), "{name} over SRT ({form}): {error}:\n{}", read.stderr);
        }
        // ffmpeg's MPEG-TS probing reads `analyzeduration` (5 s of media) before its first frame
        // (its own TS files too: the format keeps AVFMTCTX_NOHEADER); the GOP sent at once on
        // connect gives the first second of that straight away.
        let first = read.first_frame.expect("a first frame");
        eprintln!("SRT read of {name} ({form}): {} frames, first frame after {first:?}", read.frames);
        assert!(first < Duration::from_secs(8), "{name} over SRT ({form}): first frame after {first:?}");
    }
    let stopped = |log: &str| log.lines().filter(|l| l.contains("srt reader stopped") && l.contains(name)).count();
    assert!(
        eventually(Duration::from_secs(10), || stopped(&server.log()) >= reads.len()),
        "the SRT readers did not stop cleanly:\n{}",
        server.log()
    );
    let log = server.log();
    for line in log.lines().filter(|l| l.contains("srt reader stopped") && l.contains(name)) {
        eprintln!("{line}");
        let plain: String = strip_ansi(line);
        assert!(plain.contains(" dropped=0 "), "the sender dropped packets: {line}");
    }
    assert!(!log.contains("SRT sender dropped packets"), "{log}");
}

/// A log line without its terminal colours.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn srt_playback_of_rtmp_and_srt_publishers() {
    let _serial = serial();
    let server = Server::start_with_conf("keys", CONF, &[]);
    let _rtmp = publish(&server.rtmp_url("sk_viartmp_0001"), 60, "640x360");
    let _srt = srt_publish(&srt_url(&server, "publish:live/sk_plain_0001", None), 60);
    assert!(
        eventually(Duration::from_secs(15), || !server.stream("viartmp")["video"]["codec"].is_null()),
        "viartmp never went live over RTMP:\n{}",
        server.log()
    );
    wait_srt_live(&server, "plain");
    // A reader of a stream that has been live for a while (the note on #4: failures grew with
    // the server's uptime).
    std::thread::sleep(Duration::from_secs(5));
    let reads = read_both_forms(&server, "viartmp");
    assert_clean_reads(&server, "viartmp", &reads);
    let reads = read_both_forms(&server, "plain");
    assert_clean_reads(&server, "plain", &reads);
}

#[test]
fn srt_playback_can_be_turned_off() {
    let _serial = serial();
    let server = Server::start_with_conf("keys", CONF, &[("RILL_SRT_PLAYBACK", "false")]);
    let _plain = srt_publish(&srt_url(&server, "publish:live/sk_plain_0001", None), 20);
    wait_srt_live(&server, "plain");
    let start = Instant::now();
    let srt = decode(&srt_url(&server, "#!::r=live/plain,m=request", None), 2, Duration::from_secs(20));
    assert_eq!(srt.frames, 0, "an SRT reader was served with playback off");
    assert!(start.elapsed() < Duration::from_secs(10), "the refusal took {:?}", start.elapsed());
    assert!(server.log().contains("SRT playback is off"), "{}", server.log());
}

/// ffmpeg's exit status and how long it took, for a caller the server should refuse.
fn refused(url: &str) -> (bool, Duration) {
    let start = Instant::now();
    let out = srt_publish(url, 5).wait(Duration::from_secs(20));
    (!out.status.success(), start.elapsed())
}

#[test]
fn srt_refuses_bad_passphrase_unknown_key_and_long_streamid() {
    let _serial = serial();
    let server = Server::start_with_conf("keys", CONF, &[]);
    let studio = "publish:live/sk_studio_0001";
    for (what, url) in [
        ("wrong passphrase", srt_url(&server, studio, Some("not-the-passphrase"))),
        ("missing passphrase", srt_url(&server, studio, None)),
        ("unknown key", srt_url(&server, "publish:live/sk_nobody_001", None)),
        // Within SRT's 512 bytes (room for a token): an unknown key.
        ("300-byte streamid", srt_url(&server, &format!("publish:live/{}", "k".repeat(290)), None)),
        ("streamid without a mode", srt_url(&server, "live/sk_studio_0001", None)),
        ("600-byte streamid", srt_url(&server, &format!("publish:live/{}", "k".repeat(590)), None)),
        (
            "passphrase for an unencrypted stream",
            srt_url(&server, "publish:live/sk_plain_0001", Some("some-passphrase")),
        ),
    ] {
        let (failed, took) = refused(&url);
        assert!(failed, "{what}: ffmpeg was not refused");
        assert!(took < Duration::from_secs(15), "{what}: refusal took {took:?}");
        assert_eq!(server.stream("studio")["publisher"], serde_json::Value::Null, "{what}");
    }
    assert!(server.metric("rill_srt_refused_total{reason=\"passphrase\"}") >= 2.0);
    assert!(server.metric("rill_srt_refused_total{reason=\"auth\"}") >= 1.0);
    assert!(server.metric("rill_srt_refused_total{reason=\"streamid\"}") >= 1.0);
    // Reading a stream that is not live is refused too.
    let (failed, _) = {
        let start = Instant::now();
        let d = decode(&srt_url(&server, "read:live/plain", None), 2, Duration::from_secs(20));
        (d.frames == 0, start.elapsed())
    };
    assert!(failed);
    // The listener still accepts callers after all that.
    let _plain = srt_publish(&srt_url(&server, "publish:live/sk_plain_0001", None), 20);
    wait_srt_live(&server, "plain");
}

/// A deterministic byte generator (xorshift).
fn noise(seed: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed as u8
        })
        .collect()
}

/// A real MPEG-TS (H.264 + AAC) from ffmpeg, to be broken in various ways.
fn sample_ts(dir: &std::path::Path) -> Vec<u8> {
    let file = dir.join("sample.ts");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine"])
        .args(["-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", "-f", "mpegts"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(file).unwrap()
}

/// Sends `payload` as 1316-byte SRT messages from an `srt-tokio` caller with `streamid`.
async fn hostile_caller(port: u16, streamid: &str, payload: &[u8]) -> Result<(), String> {
    let mut socket = srt_tokio::SrtSocket::builder()
        // srt-tokio's default send buffer is 32 packets, and overflowing it stalls the sender for
        // a second or more (see `SEND_BUFFER_PACKETS` in ingest::srt::driver): ~3300 messages/s
        // here would, leaving the stream open after the caller thinks it is done.
        .set(|o| o.sender.buffer_size = srt_tokio::options::ByteCount(8192 * 1456))
        .call(format!("127.0.0.1:{port}").as_str(), Some(streamid))
        .await
        .map_err(|e| e.to_string())?;
    for chunk in payload.chunks(1316) {
        socket.send((Instant::now(), bytes::Bytes::copy_from_slice(chunk))).await.map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = socket.close_and_finish().await;
    Ok(())
}

#[test]
fn srt_hostile_callers_leave_other_streams_alone() {
    let _serial = serial();
    let mut server = Server::start_with_conf("keys", CONF, &[]);
    let _plain = srt_publish(&srt_url(&server, "publish:live/sk_plain_0001", None), 60);
    wait_srt_live(&server, "plain");
    let ts = sample_ts(&server.dir);
    let mut seed = 0x9e37_79b9_7f4a_7c15;

    let mut bad_sync = ts.clone();
    for packet in bad_sync.chunks_mut(188).step_by(5) {
        packet[0] = 0x48;
    }
    let mut bad_cc = ts.clone();
    for packet in bad_cc.chunks_mut(188).step_by(3) {
        packet[3] = (packet[3] & 0xf0) | ((packet[3] + 5) & 0x0f);
    }
    let mut absurd_pes = ts.clone();
    for packet in absurd_pes.chunks_mut(188) {
        // Every PES header announces 65535 bytes, whatever follows.
        if packet[1] & 0x40 != 0 {
            let start = if packet[3] & 0x20 != 0 { 5 + packet[4] as usize } else { 4 };
            if start + 6 <= 188 && packet[start..start + 3] == [0, 0, 1] {
                packet[start + 4] = 0xff;
                packet[start + 5] = 0xff;
            }
        }
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", noise(&mut seed, 2_000_000)),
        ("bad sync bytes", bad_sync),
        ("continuity errors", bad_cc),
        ("absurd PES lengths", absurd_pes),
        ("random bytes after a valid start", [&ts[..188 * 100], &noise(&mut seed, 500_000)[..]].concat()),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (what, payload) in &cases {
        let sent = runtime.block_on(hostile_caller(server.srt, "publish:live/sk_junk_0001", payload));
        assert!(sent.is_ok(), "{what}: {sent:?}");
        assert!(server.alive(), "{what} took the server down:\n{}", server.log());
        // The next caller publishes to the same stream: wait until the server has seen this one go.
        assert!(
            eventually(Duration::from_secs(15), || server.stream("junk")["publisher"].is_null()),
            "{what}: the publisher never went away:\n{}",
            server.log()
        );
    }
    // A 600-byte streamid from a caller that does not stop at SRT's 512 bytes.
    let long = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), hostile_caller(server.srt, &"x".repeat(600), b"")).await
    });
    assert!(!matches!(long, Ok(Ok(()))), "a 600-byte streamid was accepted");
    assert!(server.alive());
    assert!(server.metric("rill_srt_ts_continuity_errors_total") > 0.0);
    // The good publisher never noticed.
    assert_eq!(publisher_protocol(&server, "plain").as_deref(), Some("srt"));
    let flv = decode(&server.flv_url("plain"), 6, Duration::from_secs(30));
    assert!(flv.frames >= 150, "after the hostile callers: {} frames: {}", flv.frames, flv.stderr);
}

#[test]
fn srt_open_mode_takes_the_key_as_the_name() {
    let _serial = serial();
    let server = Server::start("open", &[]);
    let _demo = srt_publish(&srt_url(&server, "#!::r=live/demo,m=publish", None), 20);
    wait_srt_live(&server, "demo");
    let (failed, _) = refused(&srt_url(&server, "publish:live/../etc", None));
    assert!(failed, "an invalid stream name was accepted");
    let (failed, _) = refused(&srt_url(&server, "publish:other/demo2", None));
    assert!(failed, "an app other than live was accepted");
    assert_eq!(server.metric("rill_srt_refused_total{reason=\"other\"}"), 2.0);
    let (status, created) = server.api("POST", "/api/v1/streams", Some(r#"{"name":"made"}"#));
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap();
    assert!(created["srt_url"].as_str().unwrap().ends_with(&format!("?streamid=publish:live/{key}")), "{created}");
}
