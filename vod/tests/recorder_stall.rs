//! The recorder against a stalled storage: a synthetic stream is published on a Bus while
//! every storage write waits on a closed gate. With room in the buffer (memory, then spill
//! files) every frame reaches the video once the gate opens; without room the loss is a gap
//! that the video, the counters and the segment index all show. The video is never ready
//! while its stream is live.

use rill_media::testing::{avc_aac_tracks, SyntheticStream};
use rill_media::{Bus, BusConfig, PublisherInfo};
use rill_vod::catalog::{Catalog, Video, VideoQuery, VideoStatus, Visibility};
use rill_vod::recorder::spool::SpoolConfig;
use rill_vod::recorder::{Recorder, RecorderConfig};
use rill_vod::storage::{FsStorage, Storage};
use rill_vod::VideoId;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Storage whose appends wait while the gate is closed (a stalled disk).
struct GatedStorage {
    inner: FsStorage,
    open: Mutex<bool>,
    opened: Condvar,
}

impl GatedStorage {
    fn set_open(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.opened.notify_all();
    }
}

impl Storage for GatedStorage {
    fn append(&self, key: &str, bytes: &[&[u8]]) -> io::Result<()> {
        let _open = self.opened.wait_while(self.open.lock().unwrap(), |open| !*open).unwrap();
        self.inner.append(key, bytes)
    }
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        self.inner.put(key, bytes)
    }
    fn sync(&self, key: &str) -> io::Result<()> {
        self.inner.sync(key)
    }
    fn size(&self, key: &str) -> io::Result<u64> {
        self.inner.size(key)
    }
    fn read(&self, key: &str, range: Range<u64>) -> io::Result<bytes::Bytes> {
        self.inner.read(key, range)
    }
    fn truncate(&self, key: &str, len: u64) -> io::Result<()> {
        self.inner.truncate(key, len)
    }
    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        self.inner.list(prefix)
    }
    fn remove_all(&self, prefix: &str) -> io::Result<()> {
        self.inner.remove_all(prefix)
    }
}

struct Setup {
    dir: PathBuf,
    bus: Bus,
    catalog: Arc<Catalog>,
    storage: Arc<GatedStorage>,
    recorder: Arc<Recorder>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.storage.set_open(true);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn setup(spool: SpoolConfig, spill: bool) -> Setup {
    let dir = std::env::temp_dir().join(format!("rill-recorder-stall-{}", VideoId::generate()));
    let bus = Bus::new(BusConfig { reconnect_grace: Duration::from_millis(50), ..BusConfig::default() });
    let catalog = Arc::new(Catalog::connect("sqlite::memory:").await.unwrap());
    let storage = Arc::new(GatedStorage {
        inner: FsStorage::open(dir.join("recordings")).unwrap(),
        open: Mutex::new(false),
        opened: Condvar::new(),
    });
    let config = RecorderConfig {
        segmenter: Default::default(),
        visibility: Arc::new(|_| Visibility::Public),
        thumbnailer: None,
        spool,
        spool_dir: spill.then(|| dir.join("recordings/.spool")),
        on_ready: None,
    };
    let shared: Arc<dyn Storage> = storage.clone();
    let recorder = Recorder::spawn(bus.clone(), catalog.clone(), shared, config, Box::new(|_| true));
    Setup { dir, bus, catalog, storage, recorder }
}

fn publisher(bus: &Bus) -> rill_media::Publisher {
    let publisher = bus
        .publish(&rill_media::StreamPath::live("cam").unwrap(), PublisherInfo { protocol: "test", peer: "test".into() })
        .unwrap();
    publisher.set_tracks(avc_aac_tracks(true));
    publisher
}

/// Pushes seconds `from..to` of 30 fps video (2 KB frames, a keyframe every 2 s) with AAC, at
/// about 20× real time.
async fn publish(publisher: &rill_media::Publisher, from: i64, to: i64) {
    let stream = SyntheticStream { gop_ms: 2000, cts_ms: 0, audio: true, video_bytes: 2000 };
    for (n, frame) in stream.frames(from * 1000, to * 1000 - 1).into_iter().enumerate() {
        publisher.push(frame);
        if n % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

async fn the_video(catalog: &Catalog) -> Video {
    let query = VideoQuery { include_private: true, ..VideoQuery::default() };
    catalog.list(&query).await.unwrap().videos.into_iter().next().expect("a video")
}

/// Video frames in the stored segments, and whether each segment is a discontinuity.
async fn stored_frames(setup: &Setup, video: &Video) -> (u64, Vec<bool>) {
    let id = VideoId::parse(&video.id).unwrap();
    let mut frames = 0;
    let mut discontinuities = Vec::new();
    for row in setup.catalog.segments(id, "video").await.unwrap() {
        let key = format!("{id}/video/{}.m4s", row.sequence);
        let bytes = setup.storage.read(&key, 0..setup.storage.size(&key).unwrap()).unwrap();
        frames += rill_media::cmaf::scan::scan_fragments(&bytes).iter().map(|f| f.samples as u64).sum::<u64>();
        discontinuities.push(row.discontinuity);
    }
    (frames, discontinuities)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_loses_no_frame_that_the_buffer_can_hold() {
    // 256 KiB of memory and 16 MiB of spill for 20 s of a ~0.5 Mbit/s stream (1.2 MB).
    let spool = SpoolConfig { memory_bytes: 256 << 10, disk_bytes: 16 << 20, file_bytes: 256 << 10 };
    let setup = setup(spool, true).await;
    let publisher = publisher(&setup.bus);
    publish(&publisher, 0, 20).await;
    let video = the_video(&setup.catalog).await;
    assert_eq!(video.status, VideoStatus::Recording);
    let stats = &setup.recorder.stats;
    assert!(stats.spilled_bytes.load(Ordering::Relaxed) > 512 << 10, "most of it went to disk");
    assert!(setup.dir.join("recordings/.spool").join(&video.id).exists());

    setup.storage.set_open(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let video = the_video(&setup.catalog).await;
    assert_eq!(video.status, VideoStatus::Recording, "never ready while the stream is live");

    drop(publisher);
    setup.recorder.wait_idle(Duration::from_secs(10)).await;
    let video = the_video(&setup.catalog).await;
    assert_eq!(video.status, VideoStatus::Ready, "{video:?}");
    let (frames, discontinuities) = stored_frames(&setup, &video).await;
    assert_eq!(frames, 600, "every frame of 20 s at 30 fps");
    assert!(discontinuities.iter().all(|d| !d), "{discontinuities:?}");
    assert_eq!((video.frames_lost, video.lost_ms), (0, 0));
    assert_eq!(stats.frames_lost.load(Ordering::Relaxed), 0);
    assert!(!setup.dir.join("recordings/.spool").join(&video.id).exists(), "the spill files are gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_buffer_cannot_hold_is_a_counted_gap() {
    // 128 KiB of memory and no spill directory: about 2 s of the stream fit.
    let spool = SpoolConfig { memory_bytes: 128 << 10, ..SpoolConfig::default() };
    let setup = setup(spool, false).await;
    let publisher = publisher(&setup.bus);
    publish(&publisher, 0, 10).await;
    setup.storage.set_open(true);
    // The stream goes on after the stall: recorded again from its next segment.
    publish(&publisher, 10, 20).await;
    drop(publisher);
    setup.recorder.wait_idle(Duration::from_secs(10)).await;
    let video = the_video(&setup.catalog).await;
    assert_eq!(video.status, VideoStatus::Ready, "{video:?}");
    let (frames, discontinuities) = stored_frames(&setup, &video).await;
    let lost = setup.recorder.stats.frames_lost.load(Ordering::Relaxed);
    assert!(lost > 0, "frames were lost");
    assert_eq!(frames + lost, 600, "every frame is either stored or counted lost");
    assert_eq!(video.frames_lost as u64, lost);
    assert!((video.lost_ms - lost as i64 * 1000 / 30).abs() <= 40, "{} ms for {lost} frames", video.lost_ms);
    assert!(setup.recorder.stats.gaps.load(Ordering::Relaxed) >= 1);
    assert!(discontinuities.iter().any(|d| *d), "the segment after the gap is a discontinuity");
    assert!(frames > 300, "the second half is recorded: {frames} frames");
}
