//! The upload driver without HTTP: tus requests against a SQLite catalog and a temporary
//! directory, with a stand-in processor.

use bytes::Bytes;
use rill_vod::catalog::{Catalog, SegmentRow, UploadRow, UploadState, VideoSource, VideoStatus, Visibility};
use rill_vod::upload::package::{PackagedTrack, PackagedVideo};
use rill_vod::upload::tus::{format_metadata, Checksum};
use rill_vod::upload::{Process, ProcessProgress, Processed, UploadConfig, UploadError, Uploads};
use rill_vod::VideoId;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

const TYPE: Option<&str> = Some("application/offset+octet-stream");

async fn uploads(expiry: Duration) -> (Arc<Uploads>, Arc<Catalog>, PathBuf) {
    let catalog = Arc::new(Catalog::connect("sqlite::memory:").await.unwrap());
    let root = std::env::temp_dir().join(format!("rill-uploads-test-{}", VideoId::generate()));
    let config = UploadConfig { max_bytes: 1000, expiry, default_visibility: Visibility::Public };
    (Arc::new(Uploads::open(catalog.clone(), root.clone(), config).unwrap()), catalog, root)
}

fn body(
    pieces: Vec<Result<&'static [u8], &'static str>>,
) -> impl futures_util::Stream<Item = Result<Bytes, String>> + Unpin {
    futures_util::stream::iter(pieces.into_iter().map(|p| p.map(Bytes::from_static).map_err(str::to_owned)))
}

fn content(len: usize) -> &'static [u8] {
    Box::leak((0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>().into_boxed_slice())
}

#[tokio::test]
async fn resume_after_a_cut_checksums_and_limits() {
    let (uploads, _catalog, root) = uploads(Duration::from_secs(3600)).await;
    let file = content(600);
    // Over the limit: refused before anything exists.
    let refused = uploads.create(Some("1001"), None).await.unwrap_err();
    assert_eq!(refused.status(), 413);
    assert!(std::fs::read_dir(&root).unwrap().next().is_none(), "nothing stored for a refused upload");

    let meta = format_metadata([("filename", b"../../escape.mp4".as_slice()), ("title", b"Clip".as_slice())]);
    let row = uploads.create(Some("600"), Some(&meta)).await.unwrap();
    assert_eq!((row.state, row.offset, row.filename.as_str()), (UploadState::Uploading, 0, "escape.mp4"));
    let id = row.id.clone();

    // A body cut off after 250 bytes: what arrived is kept.
    let cut = body(vec![Ok(&file[..100]), Ok(&file[100..250]), Err("connection reset")]);
    let kept = uploads.patch(&id, Some("0"), TYPE, Some(600), None, cut).await.unwrap();
    assert_eq!((kept.offset, kept.complete), (250, false));
    assert_eq!(uploads.head(&id).await.unwrap().offset, 250);

    // Wrong offset, wrong content type, a bad checksum (its bytes discarded), past the length.
    let stale = uploads.patch(&id, Some("0"), TYPE, None, None, body(vec![Ok(&file[..10])])).await;
    assert_eq!(stale.unwrap_err().status(), 409);
    let typed = uploads.patch(&id, Some("250"), Some("video/mp4"), None, None, body(vec![])).await;
    assert_eq!(typed.unwrap_err().status(), 415);
    let wrong_sum = Checksum::sha1_header(b"something else");
    let bad = uploads.patch(&id, Some("250"), TYPE, None, Some(&wrong_sum), body(vec![Ok(&file[250..400])])).await;
    assert_eq!(bad.unwrap_err().status(), 460);
    assert_eq!(uploads.head(&id).await.unwrap().offset, 250);
    let past = uploads.patch(&id, Some("250"), TYPE, None, None, body(vec![Ok(&file[250..]), Ok(b"extra")])).await;
    assert_eq!(past.unwrap_err().status(), 413);

    // The rest, with its checksum.
    let sum = Checksum::sha1_header(&file[250..]);
    let done =
        uploads.patch(&id, Some("250"), TYPE, Some(350), Some(&sum), body(vec![Ok(&file[250..])])).await.unwrap();
    assert_eq!((done.offset, done.complete), (600, true));
    let status = uploads.status(&id).await.unwrap();
    assert_eq!((status.row.state, status.received), (UploadState::Processing, 600));
    let stored = std::fs::read(root.join(&id).join("data")).unwrap();
    assert_eq!(stored, file, "the file arrived whole");
    use sha1::Digest as _;
    let sha1: String = sha1::Sha1::digest(file).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(status.row.sha1.as_deref(), Some(sha1.as_str()));
    let more = uploads.patch(&id, Some("600"), TYPE, None, None, body(vec![])).await;
    assert_eq!(more.unwrap_err().status(), 409);
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn bytes_a_crash_left_past_the_offset_are_cut_off() {
    let (uploads, _catalog, root) = uploads(Duration::from_secs(3600)).await;
    let row = uploads.create(Some("100"), None).await.unwrap();
    uploads.patch(&row.id, Some("0"), TYPE, None, None, body(vec![Ok(b"0123456789")])).await.unwrap();
    // As if the server died after writing but before recording the offset.
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(root.join(&row.id).join("data")).unwrap().write_all(b"junk").unwrap();
    let next = uploads.patch(&row.id, Some("10"), TYPE, None, None, body(vec![Ok(b"abc")])).await.unwrap();
    assert_eq!(next.offset, 13);
    assert_eq!(std::fs::read(root.join(&row.id).join("data")).unwrap(), b"0123456789abc");
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
async fn abandoned_uploads_expire_and_terminated_ones_are_gone() {
    let (uploads, catalog, root) = uploads(Duration::from_millis(50)).await;
    let row = uploads.create(Some("100"), None).await.unwrap();
    let other = uploads.create(Some("100"), None).await.unwrap();
    assert!(uploads.terminate(&other.id).await.unwrap());
    assert!(matches!(uploads.status(&other.id).await, Err(UploadError::NotFound(_))));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(matches!(uploads.head(&row.id).await, Err(UploadError::NotFound(_))), "expired");
    assert_eq!(uploads.sweep_expired().await.unwrap(), 1);
    assert!(catalog.upload(VideoId::parse(&row.id).unwrap()).await.unwrap().is_none());
    assert!(!root.join(&row.id).exists(), "its file is removed");
    assert_eq!(uploads.head("../../etc").await.unwrap_err().status(), 404);
    let _ = std::fs::remove_dir_all(root);
}

/// Accepts files starting with "ok", refuses others.
struct FakeProcess;

impl Process for FakeProcess {
    fn process<'a>(
        &'a self,
        _upload: &'a UploadRow,
        _video_id: VideoId,
        file: PathBuf,
        progress: Arc<ProcessProgress>,
    ) -> Pin<Box<dyn Future<Output = Result<Processed, String>> + Send + 'a>> {
        Box::pin(async move {
            progress.set(0.5, Some(Duration::from_secs(1)));
            let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
            if bytes.starts_with(b"ok") {
                let segment = SegmentRow {
                    track: "video".into(),
                    sequence: 0,
                    init_version: 0,
                    discontinuity: false,
                    start_ticks: 0,
                    duration_ticks: 111_060,
                    timescale: 90_000,
                    size_bytes: bytes.len() as i64,
                    wall_clock_ms: 0,
                };
                let track = PackagedTrack { name: "video".into(), info: "{}".into(), segments: vec![segment] };
                Ok(Processed { video: PackagedVideo { tracks: vec![track] }, thumbnail: None })
            } else {
                Err("no video stream in the file".to_owned())
            }
        })
    }
}

#[tokio::test]
async fn complete_uploads_become_videos() {
    let (uploads, catalog, root) = uploads(Duration::from_secs(3600)).await;
    let good = uploads.create(Some("4"), Some(&format_metadata([("title", b"Good".as_slice())]))).await.unwrap();
    let bad = uploads.create(Some("4"), None).await.unwrap();
    uploads.patch(&good.id, Some("0"), TYPE, None, None, body(vec![Ok(b"ok!!")])).await.unwrap();
    uploads.patch(&bad.id, Some("0"), TYPE, None, None, body(vec![Ok(b"nope")])).await.unwrap();
    tokio::spawn(uploads.clone().run_processing(Arc::new(FakeProcess)));
    for _ in 0..100 {
        let states =
            (uploads.status(&good.id).await.unwrap().row.state, uploads.status(&bad.id).await.unwrap().row.state);
        if states == (UploadState::Ready, UploadState::Failed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let video = catalog.video(VideoId::parse(&good.video_id).unwrap()).await.unwrap().unwrap();
    assert_eq!(
        (video.status, video.source, video.title.as_str(), video.duration_ms),
        (VideoStatus::Ready, VideoSource::Upload, "Good", 1234)
    );
    let failed = catalog.video(VideoId::parse(&bad.video_id).unwrap()).await.unwrap().unwrap();
    assert_eq!((failed.status, failed.error.as_deref()), (VideoStatus::Failed, Some("no video stream in the file")));
    let upload = uploads.status(&bad.id).await.unwrap().row;
    assert_eq!(upload.error.as_deref(), Some("no video stream in the file"));
    assert!(!root.join(&good.id).exists(), "the uploaded file is removed once processed");
    let _ = std::fs::remove_dir_all(root);
}
