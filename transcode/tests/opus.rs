//! AAC → Opus on a real Bus with a real ffmpeg AAC clip: one shared feed per stream, Opus on
//! the source's timeline, stopped with its last guard, a no-op for Opus sources.

mod common;

use common::*;
use rill_media::{CodecConfig, Frame, TrackId, Tracks};
use rill_transcode::audio::OpusFeeds;
use std::time::Duration;

fn audio_ms(frames: &[Frame]) -> Vec<i64> {
    frames.iter().filter(|f| f.track == TrackId::AUDIO).map(|f| f.pts.as_millis()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn aac_becomes_shared_opus_on_the_source_timeline() {
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    let (tracks, frames) = clip(4, true);
    let bus = bus();
    let source = publish(&bus, "live/talk", &tracks);
    let feeds = OpusFeeds::new(bus.clone());
    let first = feeds.acquire(&p("live/talk")).unwrap();
    let second = feeds.clone().acquire(&p("live/talk")).unwrap();
    assert_eq!(first.path().to_string(), "live/talk/opus");
    assert_eq!(second.path(), first.path(), "one feed shared by every consumer");
    assert!(!first.is_passthrough());
    let opus = collect(bus.subscribe_service(first.path()).unwrap(), Duration::from_secs(30));
    push_paced(&source, &frames, 2.0, 1).await;
    drop(source);
    let received = opus.await.unwrap();
    assert!(received.ended, "the Opus stream ends with its source");
    assert_eq!(received.tracks[0].audio, Some(CodecConfig::Opus { channels: 1, sample_rate: 48_000 }));
    assert!(received.tracks[0].video.is_none());

    let aac = audio_ms(&frames);
    let out = &received.frames;
    let opus_ms = audio_ms(out);
    let (aac_first, aac_end) = (aac[0], *aac.last().unwrap() + 21);
    let opus_end = *opus_ms.last().unwrap() + 20;
    eprintln!("AAC {aac_first}..{aac_end} ms, Opus {}..{opus_end} ms in {} frames", opus_ms[0], out.len());
    assert!((opus_ms[0] - aac_first).abs() <= 20, "starts with the source audio: {} vs {aac_first}", opus_ms[0]);
    assert!((opus_end - aac_end).abs() <= 40, "ends with it: {opus_end} vs {aac_end}");
    assert!(out.iter().all(|f| f.keyframe && f.dts == f.pts && !f.payload.is_empty()));
    assert!(out.iter().all(|f| f.pts.timebase().hz() == 48_000));
    let steps: Vec<(usize, i64)> =
        out.windows(2).map(|w| (w[1].pts - w[0].pts).ticks()).enumerate().filter(|(_, d)| *d != 960).collect();
    assert!(steps.is_empty(), "20 ms frames back to back, not {steps:?}");
    assert!(!first.is_running() && !second.is_running());
    drop((first, second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn the_feed_stops_with_its_last_guard_and_restarts() {
    let (tracks, frames) = clip(4, true);
    let bus = bus();
    let source = publish(&bus, "live/radio", &tracks);
    let feeds = OpusFeeds::new(bus.clone());
    let pusher = {
        let frames = frames.clone();
        tokio::spawn(async move {
            push_paced(&source, &frames, 1.0, 1).await;
            source
        })
    };
    let a = feeds.acquire(&p("live/radio")).unwrap();
    let b = feeds.acquire(&p("live/radio")).unwrap();
    assert!(bus.contains(&p("live/radio").with_feed(rill_media::Feed::Opus)));
    drop(a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bus.contains(&p("live/radio/opus")), "still held by one guard");
    let sub = collect(bus.subscribe_service(&p("live/radio/opus")).unwrap(), Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(b);
    let received = sub.await.unwrap();
    assert!(received.ended, "the last guard stops the feed and ends its stream");
    assert!(!received.frames.is_empty());
    tokio::time::timeout(Duration::from_secs(2), bus.ended(&p("live/radio/opus")))
        .await
        .expect("the feed's stream ends");
    // A new consumer starts it again.
    let c = feeds.acquire(&p("live/radio")).unwrap();
    let again = collect(bus.subscribe_service(c.path()).unwrap(), Duration::from_secs(1));
    assert!(!again.await.unwrap().frames.is_empty());
    drop(c);
    drop(pusher.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opus_sources_need_nothing_and_others_are_refused() {
    let bus = bus();
    let feeds = OpusFeeds::new(bus.clone());
    let opus =
        Tracks { video: None, audio: Some(CodecConfig::Opus { channels: 2, sample_rate: 48_000 }), encoder: None };
    let _whip = publish(&bus, "live/whip", &opus);
    let guard = feeds.acquire(&p("live/whip")).unwrap();
    assert!(guard.is_passthrough());
    assert_eq!(guard.path().to_string(), "live/whip");
    assert!(!bus.contains(&p("live/whip/opus")));
    assert!(feeds.acquire(&p("live/nobody")).is_err());
    let video_only = rill_media::testing::avc_aac_tracks(false);
    let _silent = publish(&bus, "live/silent", &video_only);
    let err = feeds.acquire(&p("live/silent")).err().expect("no audio to transcode");
    assert!(err.to_string().contains("live/silent"), "{err}");
}
