//! A recording loses nothing to a stalled catalog: ffmpeg publishes 50 s of 30 fps video over
//! RTMP while the catalog's PostgreSQL server is frozen (SIGSTOP of the postmaster and every
//! backend) for 25 s from t ≈ 10 s. The recorder keeps reading the stream into its buffer, the
//! writer catches up once the database is back, and the finished video has every frame that
//! was published.
//!
//! Needs a PostgreSQL cluster of its own (`RILL_TEST_POSTGRES_URL`, as scripts/test.sh starts
//! with scripts/postgres.sh): the whole cluster is paused. Skipped without it, unless
//! `RILL_REQUIRE_POSTGRES=1`.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);
const PUBLISH_S: u32 = 50;
/// `common::publish` sends 30 fps.
const PUBLISHED_FRAMES: u64 = PUBLISH_S as u64 * 30;
const STALL_FROM: Duration = Duration::from_secs(10);
const STALL: Duration = Duration::from_secs(25);

/// Processes whose parent is `pid` (from /proc: every backend, the checkpointer, the WAL
/// writer… of a postmaster).
fn children(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // `pid (comm) state ppid …`: comm may contain spaces, so split after its `)`.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            found.push(child);
        }
    }
    found
}

fn signal(signal: &str, pids: &[u32]) {
    let status = Command::new("kill").arg(format!("-{signal}")).args(pids.iter().map(u32::to_string)).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {pids:?}");
}

/// A frozen PostgreSQL cluster: the postmaster is stopped first (so it forks no new backend),
/// then all its children, whose connections then hang. Thawed when dropped, also on panic.
struct Frozen(Vec<u32>);

impl Frozen {
    fn freeze(postmaster: u32) -> Frozen {
        signal("STOP", &[postmaster]);
        let mut pids = vec![postmaster];
        pids.extend(children(postmaster));
        signal("STOP", &pids[1..]);
        Frozen(pids)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-CONT").args(self.0.iter().map(u32::to_string)).status();
    }
}

/// Video frames of `url` counted by decoding them (`ffprobe -count_frames`).
fn count_video_frames(url: &str) -> u64 {
    let output = wait_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ffprobe is installed"),
        T,
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let count = text.split(|c: char| !c.is_ascii_digit()).find(|n| !n.is_empty()).and_then(|n| n.parse().ok());
    count.unwrap_or_else(|| panic!("ffprobe {url}: {text:?} {}", String::from_utf8_lossy(&output.stderr)))
}

fn video(server: &Server, id: &str) -> Value {
    let (status, video) = server.api("GET", &format!("/api/v1/videos/{id}"), None);
    assert_eq!(status, 200, "{video}");
    video
}

#[test]
fn a_recording_keeps_every_frame_while_the_catalog_database_is_frozen() {
    let _serial = serial();
    let Some(database) = PostgresDatabase::create("rill_stall") else { return };
    let postmaster = database.postmaster_pid();
    let url = database.url();
    let server = Server::start("open", &[("RILL_BUS_RECONNECT_GRACE_S", "2"), ("RILL_DATABASE_URL", &url)]);
    let publisher = publish(&server.rtmp_url("stall"), PUBLISH_S, "640x360");
    let started = Instant::now();
    let mut id = String::new();
    let appeared = eventually(Duration::from_secs(8), || {
        let (_, page) = server.api("GET", "/api/v1/videos?stream=stall", None);
        id = page["videos"][0]["id"].as_str().unwrap_or_default().to_string();
        !id.is_empty()
    });
    assert!(appeared, "no video for the stream:\n{}", server.log());

    std::thread::sleep(STALL_FROM.saturating_sub(started.elapsed()));
    let frozen = Frozen::freeze(postmaster);
    eprintln!("froze PostgreSQL (pids {:?}) at t = {:.1} s", frozen.0, started.elapsed().as_secs_f64());
    std::thread::sleep(STALL);
    drop(frozen);
    eprintln!("thawed PostgreSQL at t = {:.1} s", started.elapsed().as_secs_f64());

    let out = publisher.wait(T);
    assert!(out.status.success(), "publisher: {}", String::from_utf8_lossy(&out.stderr));
    let mut last = Value::Null;
    let ended = eventually(Duration::from_secs(60), || {
        last = video(&server, &id);
        last["status"] != "recording"
    });
    assert!(ended && last["status"] == "ready", "video {id} not ready: {last}\n{}", server.log());
    let hls = format!("http://127.0.0.1:{}/vod/{id}/index.m3u8", server.http);
    let frames = count_video_frames(&hls);
    eprintln!(
        "recorded {frames} of {PUBLISHED_FRAMES} frames; catalog: {} ms, frames_lost {}",
        last["duration_ms"], last["frames_lost"]
    );
    // The recorder subscribes when the stream starts, before its first frame (a keyframe), and
    // ends when the publisher's last frame is in: every published frame is in the video.
    assert_eq!(frames, PUBLISHED_FRAMES, "{last}");
    let duration_ms = last["duration_ms"].as_i64().unwrap();
    assert!((49_500..=50_500).contains(&duration_ms), "{last}");
    assert_eq!(last["frames_lost"], 0, "{last}");
    assert_eq!(last["lost_ms"], 0, "{last}");
    assert_eq!(server.metric("rill_recording_frames_lost_total"), 0.0);
}
