//! The WebRTC rendition on a real Bus with a real ffmpeg H.264 High clip (720p30, B-frames):
//! Constrained Baseline at the source's size, keyframes exactly on the source's, one transcode
//! shared by every guard, gone from the Bus when the last guard drops.

mod common;

use common::*;
use rill_media::CodecConfig;
use rill_transcode::ladder::LadderConfig;
use rill_transcode::webrtc::{BaselineConfig, BaselineFeeds};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn constrained_baseline_on_the_source_keyframes_shared_and_released() {
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    let _cpu = exclusive().await;
    let (tracks, frames) = clip(4, true);
    let Some(CodecConfig::Avc(source_avc)) = &tracks.video else { panic!("an AVC clip") };
    assert_ne!(source_avc.sps.profile_idc, 0x42, "the clip is not Baseline already");
    let bus = bus();
    let source = publish(&bus, "live/cam", &tracks);
    let feeds = BaselineFeeds::new(
        bus.clone(),
        BaselineConfig {
            ladder: LadderConfig { x264_speed_preset: "ultrafast".into(), ..LadderConfig::default() },
            video_kbps: 1500,
        },
    );
    let first = feeds.acquire(&p("live/cam")).unwrap();
    let second = feeds.acquire(&p("live/cam")).unwrap();
    assert_eq!(first.path(), &p("live/cam/webrtc"));
    assert_eq!(feeds.view(&p("live/cam")).unwrap().viewers, 2, "one rendition, two holders");
    wait_for(&bus, &["live/cam/webrtc"]).await;
    let out = collect(bus.subscribe_service(&p("live/cam/webrtc")).unwrap(), Duration::from_secs(30));
    push_paced(&source, &frames[..frames.len() * 3 / 4], 1.0, 1).await;
    drop(first);
    assert!(bus.contains(&p("live/cam/webrtc")), "still held by the second viewer");
    drop(second);
    let received = out.await.unwrap();
    assert!(received.ended, "the rendition ends with its last viewer");
    assert!(feeds.view(&p("live/cam")).is_none());
    let Some(CodecConfig::Avc(avc)) = &received.tracks[0].video else { panic!("an AVC rendition") };
    assert_eq!(avc.sps.profile_idc, 0x42, "Baseline");
    assert!(avc.sps.constraint_flags & 0x40 != 0, "constraint_set1: Constrained Baseline");
    assert_eq!((avc.sps.width, avc.sps.height), (source_avc.sps.width, source_avc.sps.height));
    let video = &received.frames;
    assert!(video.len() > 40, "{} frames", video.len());
    let source_keys: Vec<i64> =
        frames.iter().filter(|f| f.is_video() && f.keyframe).map(|f| f.pts.as_millis()).collect();
    for f in video.iter().filter(|f| f.keyframe) {
        assert!(source_keys.contains(&f.pts.as_millis()), "keyframe at {} ms is a source keyframe", f.pts.as_millis());
    }
    assert!(video[0].keyframe);
    assert!(video.windows(2).all(|w| w[0].pts.as_millis() < w[1].pts.as_millis()), "no B-frames");
}
