//! Shared pieces of the transcode tests: real ffmpeg clips read into Bus frames, and a
//! publisher that pushes them at a chosen pace.
#![allow(dead_code)]

use bytes::Bytes;
use rill_media::Delivery;
use rill_media::{Bus, BusConfig, Frame, MediaTime, Publisher, PublisherInfo, StreamPath, Subscriber, Tracks};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A Bus whose streams end 200 ms after their publisher leaves.
pub fn bus() -> Bus {
    Bus::new(BusConfig { reconnect_grace: Duration::from_millis(200), ..Default::default() })
}

/// `seconds` of 1280x720 30 fps H.264 (libx264, high profile with B-frames, GOP 60) and, with
/// `audio`, a 48 kHz mono AAC sine, muxed to FLV by ffmpeg and read back.
pub fn clip(seconds: u32, audio: bool) -> (Tracks, Vec<Frame>) {
    clip_sized((1280, 720), seconds, audio)
}

/// Like [`clip`], at another picture size.
pub fn clip_sized(size: (u32, u32), seconds: u32, audio: bool) -> (Tracks, Vec<Frame>) {
    let (width, height) = size;
    // Tests run in parallel: one ffmpeg per clip, the others wait for it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join("rill-transcode-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join(format!("testsrc2-{width}x{height}-{seconds}s-{audio}-{}.flv", std::process::id()));
    if !file.exists() {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-y", "-v", "error", "-f", "lavfi", "-i", &format!("testsrc2=size={width}x{height}:rate=30")]);
        if audio {
            cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
        }
        cmd.args(["-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-pix_fmt", "yuv420p"]);
        if audio {
            cmd.args(["-c:a", "aac", "-b:a", "96k"]);
        }
        cmd.args(["-t", &seconds.to_string(), "-f", "flv"]).arg(&file);
        let status = cmd.status().expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg made the clip");
    }
    let data = Bytes::from(std::fs::read(&file).unwrap());
    rill_transcode::flv_file::read(data).expect("ffmpeg's FLV reads back")
}

/// `s` as a Bus path (`live/<name>[/<feed>]`).
pub fn p(s: &str) -> StreamPath {
    s.parse().unwrap()
}

pub fn publish(bus: &Bus, path: &str, tracks: &Tracks) -> Publisher {
    let publisher = bus.publish(&p(path), PublisherInfo { protocol: "test", peer: "test".into() }).unwrap();
    publisher.set_tracks(tracks.clone());
    publisher
}

/// Pushes `frames` (looped `loops` times, times shifted to continue) at `speed` × real time.
/// Returns when each video frame (by PTS in ms) was pushed.
pub async fn push_paced(publisher: &Publisher, frames: &[Frame], speed: f64, loops: u32) -> HashMap<i64, Instant> {
    let mut pushed = HashMap::new();
    let first = frames.iter().map(|f| f.dts.as_millis()).min().unwrap_or(0);
    let span = frames.iter().map(|f| f.dts.as_millis()).max().unwrap_or(0) - first + 33;
    let start = Instant::now();
    for l in 0..loops as i64 {
        let shift = MediaTime::from_millis(l * span);
        for frame in frames {
            let due = Duration::from_secs_f64((frame.dts.as_millis() - first + l * span) as f64 / 1000.0 / speed);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            let mut frame = frame.clone();
            frame.pts = frame.pts + shift;
            frame.dts = frame.dts + shift;
            if frame.is_video() {
                pushed.insert(frame.pts.as_millis(), Instant::now());
            }
            publisher.push(frame);
        }
    }
    pushed
}

/// What a subscriber received until its stream ended.
#[derive(Debug, Default)]
pub struct Received {
    pub tracks: Vec<Tracks>,
    pub frames: Vec<Frame>,
    /// When each frame was received.
    pub arrivals: Vec<Instant>,
    pub ended: bool,
}

/// Collects a subscriber's deliveries until the stream ends (or `limit` passes).
pub fn collect(mut sub: Subscriber, limit: Duration) -> tokio::task::JoinHandle<Received> {
    tokio::spawn(async move {
        let mut received = Received::default();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, sub.recv()).await {
                Ok(Ok(Delivery::Tracks(t))) => received.tracks.push((*t).clone()),
                Ok(Ok(Delivery::Frames(f))) => {
                    received.arrivals.extend(f.iter().map(|_| Instant::now()));
                    received.frames.extend(f);
                }
                Ok(Ok(Delivery::Ended)) => {
                    received.ended = true;
                    break;
                }
                Ok(Err(e)) => panic!("subscriber failed: {e}"),
                Err(_) => break,
            }
        }
        received
    })
}

/// Waits until every path exists on the Bus.
pub async fn wait_for(bus: &Bus, paths: &[&str]) {
    let all = async {
        for path in paths {
            bus.live(&p(path)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), all).await.unwrap_or_else(|_| panic!("{paths:?} never appeared"));
}

/// Serializes the CPU-heavy tests of one test binary: an overload test running beside a
/// real-time test would make the latter miss real time.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static CPU: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    CPU.lock().await
}

/// `seconds` of `size` 30 fps HEVC (libx265, GOP 1 s) in MPEG-TS from ffmpeg, demuxed by
/// Rill's own TS demuxer as SRT ingest does (90 kHz times, hvcC).
pub fn clip_hevc(size: (u32, u32), seconds: u32) -> (Tracks, Vec<Frame>) {
    use rill_media::mpegts::demux::{TsDemuxer, TsEvent, DEFAULT_MAX_PES_BYTES};
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    let (width, height) = size;
    let dir = std::env::temp_dir().join("rill-transcode-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("testsrc2-hevc-{width}x{height}-{seconds}s-{}.ts", std::process::id()));
    if !file.exists() {
        let status = Command::new("ffmpeg")
            .args(["-y", "-v", "error", "-f", "lavfi", "-i", &format!("testsrc2=size={width}x{height}:rate=30")])
            .args([
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "keyint=30:min-keyint=30:log-level=error",
            ])
            .args(["-pix_fmt", "yuv420p", "-t", &seconds.to_string(), "-f", "mpegts"])
            .arg(&file)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg made the HEVC clip");
    }
    let mut demuxer = TsDemuxer::new(DEFAULT_MAX_PES_BYTES);
    demuxer.push(&std::fs::read(&file).unwrap());
    demuxer.flush();
    let (mut tracks, mut frames) = (None, Vec::new());
    while let Some(event) = demuxer.poll() {
        match event {
            TsEvent::Tracks(t) => tracks = Some(t),
            TsEvent::Frame(f) => frames.push(f),
        }
    }
    (tracks.expect("tracks"), frames)
}
