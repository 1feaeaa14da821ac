//! The live ladder end to end on a real Bus with a real ffmpeg H.264 clip (720p30, B-frames,
//! GOP 2 s): rendition resolutions, keyframes on the source's keyframes, PTS taken from the
//! source, garbage input ending only its own ladder, overload dropping the top rung first (on
//! rungs slowed on purpose, so that it happens however fast the machine is).

mod common;

use common::*;
use rill_media::{CodecConfig, Frame, TrackId};
use rill_transcode::ladder::{run_ladder, LadderConfig, LadderStatus, Rung, RungState};
use rill_transcode::TranscodeError;
use std::collections::BTreeSet;
use std::time::Duration;

fn config(rungs: Vec<Rung>, preset: &str, max_lateness: Duration) -> LadderConfig {
    LadderConfig {
        rungs,
        encoder: "x264enc".into(),
        x264_speed_preset: preset.into(),
        max_lateness,
        encode_delay: Duration::ZERO,
    }
}

fn pts_set(frames: &[Frame], keyframes_only: bool) -> BTreeSet<i64> {
    frames
        .iter()
        .filter(|f| f.track == TrackId::VIDEO && (f.keyframe || !keyframes_only))
        .map(|f| f.pts.as_millis())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn renditions_have_the_source_keyframes_and_pts() {
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    let _cpu = exclusive().await;
    let (tracks, frames) = clip(6, true);
    let bus = bus();
    let source = publish(&bus, "live/ladder", &tracks);
    let status = LadderStatus::new();
    let rungs = vec![
        Rung::new("360p", 640, 360, 600),
        Rung::new("1080p", 1920, 1080, 6000), // above the source: skipped
        Rung::new("480p", 854, 480, 1000),
    ];
    let ladder = tokio::spawn(run_ladder(
        bus.clone(),
        p("live/ladder"),
        config(rungs, "veryfast", Duration::from_secs(10)),
        status.clone(),
    ));
    wait_for(&bus, &["live/ladder/480p", "live/ladder/360p"]).await;
    assert!(!bus.contains(&p("live/ladder/1080p")));
    let r480 = collect(bus.subscribe_service(&p("live/ladder/480p")).unwrap(), Duration::from_secs(30));
    let r360 = collect(bus.subscribe_service(&p("live/ladder/360p")).unwrap(), Duration::from_secs(30));
    let pushed = push_paced(&source, &frames, 1.0, 1).await;
    let running = status.snapshot();
    drop(source);
    ladder.await.unwrap().expect("the ladder ends cleanly with its source");

    let source_all = pts_set(&frames, false);
    let source_keys = pts_set(&frames, true);
    assert_eq!(source_keys.len(), 3, "the clip has a keyframe every 2 s");
    for (received, (w, h), kbps) in [(r480.await.unwrap(), (854, 480), 1000), (r360.await.unwrap(), (640, 360), 600)] {
        assert!(received.ended, "the rendition ends with the source");
        let Some(CodecConfig::Avc(avc)) = &received.tracks[0].video else { panic!("an AVC rendition") };
        assert_eq!((avc.sps.width, avc.sps.height), (w, h));
        assert!(received.tracks[0].audio.is_none());
        let out = &received.frames;
        assert!(
            out.len() >= frames.iter().filter(|f| f.is_video()).count() * 95 / 100,
            "{w}x{h}: {} frames",
            out.len()
        );
        let strangers: Vec<_> = pts_set(out, false).difference(&source_all).copied().collect();
        assert!(strangers.is_empty(), "{w}x{h}: every PTS is a source PTS, not {strangers:?}");
        assert_eq!(pts_set(out, true), source_keys, "{w}x{h}: keyframes exactly on the source's");
        assert!(out.windows(2).all(|p| p[0].pts.as_millis() < p[1].pts.as_millis()), "increasing, no B-frames");
        assert!(out.iter().all(|f| f.dts == f.pts));
        assert!(out[0].keyframe);
        let bits: usize = out.iter().map(|f| f.payload.len() * 8).sum();
        let seconds = out.len() as f64 / 30.0;
        let measured = bits as f64 / seconds / 1000.0;
        eprintln!("{w}x{h}: {measured:.0} kbit/s for {kbps} configured");
        assert!(measured < kbps as f64 * 1.25, "{w}x{h}: {measured:.0} kbit/s is over {kbps}");
        // Added latency: a rendition frame on the Bus minus its source frame on the Bus.
        let mut added: Vec<u128> = out
            .iter()
            .zip(&received.arrivals)
            .filter_map(|(f, at)| pushed.get(&f.pts.as_millis()).map(|p| at.duration_since(*p).as_millis()))
            .collect();
        added.sort_unstable();
        eprintln!(
            "{w}x{h}: added latency median {} ms, p95 {} ms, max {} ms over {} frames",
            added[added.len() / 2],
            added[added.len() * 95 / 100],
            added[added.len() - 1],
            added.len()
        );
    }
    let snapshot = status.snapshot();
    assert_eq!(snapshot.rungs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["480p", "360p"]);
    assert!(snapshot.rungs.iter().all(|r| r.state == RungState::Ended && r.frames >= 170));
    // Producing while fed (how many pictures a second depends on the machine: not asserted).
    assert!(running.rungs.iter().all(|r| r.state == RungState::Running && r.fps > 0.0), "{running:?}");
    assert_eq!(snapshot.input_dropped, 0);
    eprintln!("while running: {running:?}");

    // Restartable: the same source publishes again and a new ladder runs.
    let source = publish(&bus, "live/ladder", &tracks);
    let ladder = tokio::spawn(run_ladder(
        bus.clone(),
        p("live/ladder"),
        config(vec![Rung::new("360p", 640, 360, 600)], "ultrafast", Duration::from_secs(10)),
        status.clone(),
    ));
    wait_for(&bus, &["live/ladder/360p"]).await;
    let again = collect(bus.subscribe_service(&p("live/ladder/360p")).unwrap(), Duration::from_secs(30));
    push_paced(&source, &frames[..frames.len() / 3], 2.0, 1).await;
    drop(source);
    ladder.await.unwrap().expect("restarted ladder ends cleanly");
    assert!(again.await.unwrap().frames.len() > 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn garbage_input_ends_only_its_own_ladder() {
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    let _cpu = exclusive().await;
    let (tracks, frames) = clip(4, false);
    let bus = bus();
    let good = publish(&bus, "live/good", &tracks);
    let bad = publish(&bus, "live/bad", &tracks);
    let rungs = || vec![Rung::new("360p", 640, 360, 500)];
    let good_status = LadderStatus::new();
    let bad_status = LadderStatus::new();
    let cfg = |r| config(r, "ultrafast", Duration::from_secs(10));
    let good_ladder = tokio::spawn(run_ladder(bus.clone(), p("live/good"), cfg(rungs()), good_status.clone()));
    let bad_ladder = tokio::spawn(run_ladder(bus.clone(), p("live/bad"), cfg(rungs()), bad_status.clone()));
    wait_for(&bus, &["live/good/360p", "live/bad/360p"]).await;
    let good_out = collect(bus.subscribe_service(&p("live/good/360p")).unwrap(), Duration::from_secs(30));
    let bad_out = collect(bus.subscribe_service(&p("live/bad/360p")).unwrap(), Duration::from_secs(30));

    // One second of good video into both, then a run of garbage NAL units into one.
    let second: Vec<Frame> = frames.iter().filter(|f| f.dts.as_millis() < 1000).cloned().collect();
    tokio::join!(push_paced(&good, &second, 2.0, 1), push_paced(&bad, &second, 2.0, 1));
    let mut seed = 0x2545f491u32;
    let garbage: Vec<Frame> = frames
        .iter()
        .filter(|f| f.dts.as_millis() >= 1000)
        .map(|f| {
            let mut payload = vec![0u8, 0, 0x0f, 0xfc];
            payload.extend((0..4092).map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            }));
            Frame { payload: payload.into(), ..f.clone() }
        })
        .collect();
    let rest: Vec<Frame> = frames.iter().filter(|f| f.dts.as_millis() >= 1000).cloned().collect();
    let (_, _, bad_result) =
        tokio::join!(push_paced(&good, &rest, 1.0, 1), push_paced(&bad, &garbage, 1.0, 1), async {
            tokio::time::timeout(Duration::from_secs(20), bad_ladder).await
        });
    let err = bad_result.expect("the bad ladder ends").unwrap().expect_err("garbage is an error");
    eprintln!("bad ladder: {err}");
    assert!(matches!(err, TranscodeError::Element { .. } | TranscodeError::Pipeline { .. }), "{err:?}");
    assert!(err.to_string().contains("live/bad"), "the error names the stream: {err}");
    assert!(!bus.contains(&p("live/bad/360p")), "its rendition ended");
    assert!(bus.contains(&p("live/bad")), "its source keeps going");
    let bad_snapshot = bad_status.snapshot();
    assert_eq!(bad_snapshot.rungs[0].state, RungState::Failed);
    assert!(bad_snapshot.error.is_some());
    assert!(bad_out.await.unwrap().ended);

    assert!(!good_ladder.is_finished(), "the other ladder is untouched");
    drop(good);
    good_ladder.await.unwrap().expect("the good ladder ends cleanly");
    let good_frames = good_out.await.unwrap().frames;
    assert!(good_frames.len() >= 100, "the good rendition kept going: {}", good_frames.len());
    drop(bad);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn overload_drops_the_most_expensive_rung_first() {
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    let _cpu = exclusive().await;
    let (tracks, frames) = clip(4, false);
    let bus = bus();
    let source = publish(&bus, "live/busy", &tracks);
    let status = LadderStatus::new();
    // Every rung holds each picture 100 ms before its encoder: at most 10 of the source's 30
    // pictures a second, on any machine however fast. Its lateness passes 300 ms within a
    // second of real-time input, and the first drop follows the 2 s sustain window. (The
    // policy's arithmetic is unit-tested on a virtual clock: src/overload.rs.)
    let rungs = vec![Rung::new("576p", 1024, 576, 2000), Rung::new("360p", 640, 360, 600)];
    let mut cfg = config(rungs, "ultrafast", Duration::from_millis(300));
    cfg.encode_delay = Duration::from_millis(100);
    let ladder = tokio::spawn(run_ladder(bus.clone(), p("live/busy"), cfg, status.clone()));
    wait_for(&bus, &["live/busy/576p", "live/busy/360p"]).await;
    let top = collect(bus.subscribe_service(&p("live/busy/576p")).unwrap(), Duration::from_secs(60));
    let feeder = push_paced(&source, &frames, 1.0, 4);
    let watcher = async {
        loop {
            let s = status.snapshot();
            let dropped: Vec<_> =
                s.rungs.iter().filter(|r| r.state == RungState::DroppedOverload).map(|r| r.name.clone()).collect();
            if !dropped.is_empty() {
                return (dropped, s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (dropped, snapshot) = tokio::select! {
        _ = feeder => panic!("16 s of real-time input into rungs held to 10 fps, and no overload: {:?}", status.snapshot()),
        d = watcher => d,
    };
    eprintln!("first drop: {snapshot:?}");
    assert_eq!(dropped, ["576p"], "the most expensive rung goes first");
    assert!(snapshot.rungs[1].frames > 0, "the other rung was running");
    assert!(top.await.unwrap().ended, "its Bus stream ended");
    assert!(!bus.contains(&p("live/busy/576p")));
    drop(source);
    match ladder.await.unwrap() {
        Ok(()) => assert_eq!(status.snapshot().rungs[1].state, RungState::Ended),
        Err(TranscodeError::Overloaded { .. }) => {}
        Err(e) => panic!("unexpected: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn a_missing_encoder_fails_cleanly() {
    let (tracks, _) = clip(1, false);
    let bus = bus();
    let _source = publish(&bus, "live/hw", &tracks);
    let status = LadderStatus::new();
    let mut cfg = config(vec![Rung::new("360p", 640, 360, 500)], "veryfast", Duration::from_secs(1));
    cfg.encoder = "nosuchh264enc".into();
    let err = run_ladder(bus.clone(), p("live/hw"), cfg.clone(), status.clone()).await.expect_err("no such element");
    assert!(matches!(err, TranscodeError::Pipeline { .. }), "{err:?}");
    assert!(!bus.contains(&p("live/hw/360p")), "no rendition left behind");
    assert_eq!(status.snapshot().rungs[0].state, RungState::Failed);
    cfg.encoder = "x264enc ! fakesink".into();
    let err = run_ladder(bus.clone(), p("live/hw"), cfg, status).await.expect_err("not an element name");
    assert!(err.to_string().contains("invalid encoder"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn a_reconnecting_source_with_new_settings_rebuilds_the_ladder() {
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    let _cpu = exclusive().await;
    let (hd, hd_frames) = clip(2, false);
    let (qhd, qhd_frames) = clip_sized((960, 540), 2, false);
    let (small, small_frames) = clip_sized((640, 360), 1, false);
    let bus = bus();
    let status = LadderStatus::new();
    let source = publish(&bus, "live/re", &hd);
    let rungs = vec![Rung::new("480p", 854, 480, 900), Rung::new("360p", 640, 360, 500)];
    let ladder = tokio::spawn(run_ladder(
        bus.clone(),
        p("live/re"),
        config(rungs, "ultrafast", Duration::from_secs(10)),
        status.clone(),
    ));
    wait_for(&bus, &["live/re/480p", "live/re/360p"]).await;
    let r480 = collect(bus.subscribe_service(&p("live/re/480p")).unwrap(), Duration::from_secs(30));
    push_paced(&source, &hd_frames, 2.0, 1).await;
    // The publisher reconnects within the grace period at 960x540: same rungs, new decoder.
    drop(source);
    let source = publish(&bus, "live/re", &qhd);
    push_paced(&source, &qhd_frames, 2.0, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status.snapshot().rungs.len(), 2);
    assert!(bus.contains(&p("live/re/480p")), "the same renditions go on");
    // And again at 640x360: no rung below it, the renditions end, the ladder waits.
    drop(source);
    let source = publish(&bus, "live/re", &small);
    push_paced(&source, &small_frames, 2.0, 1).await;
    let received = r480.await.unwrap();
    assert!(received.ended, "the 480p rendition ended when the source went down to 360p");
    // Frames of the first session still unread on the Bus when the publisher came back are
    // gone (the Bus restarts subscribers at the new session's keyframe); both sessions show.
    let first = received.frames.iter().filter(|f| f.pts.as_millis() < 2100).count();
    let second = received.frames.len() - first;
    eprintln!("480p frames: {first} from the 720p session, {second} from the 540p session");
    assert!(first >= 40 && second >= 40, "frames of both sessions: {first} + {second}");
    assert!(received.frames.windows(2).all(|w| w[0].pts.as_millis() < w[1].pts.as_millis()), "one timeline");
    assert!(status.snapshot().rungs.is_empty());
    assert!(!ladder.is_finished(), "still following the source");
    drop(source);
    ladder.await.unwrap().expect("ends with the source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn hevc_sources_on_a_90khz_clock_are_transcoded_too() {
    let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    let _cpu = exclusive().await;
    let (tracks, frames) = clip_hevc((1280, 720), 3);
    assert!(matches!(tracks.video, Some(CodecConfig::Hevc { .. })));
    assert_eq!(frames[0].pts.timebase().hz(), 90_000);
    let bus = bus();
    let source = publish(&bus, "live/hevc", &tracks);
    let status = LadderStatus::new();
    let ladder = tokio::spawn(run_ladder(
        bus.clone(),
        p("live/hevc"),
        config(
            vec![Rung::new("360p", 640, 360, 500), Rung::new("720p", 1280, 720, 3000)],
            "ultrafast",
            Duration::from_secs(10),
        ),
        status.clone(),
    ));
    wait_for(&bus, &["live/hevc/360p"]).await;
    assert!(!bus.contains(&p("live/hevc/720p")), "the source's own height is not a rung");
    let r360 = collect(bus.subscribe_service(&p("live/hevc/360p")).unwrap(), Duration::from_secs(30));
    push_paced(&source, &frames, 1.0, 1).await;
    drop(source);
    ladder.await.unwrap().expect("ends with the source");
    let received = r360.await.unwrap();
    let Some(CodecConfig::Avc(avc)) = &received.tracks[0].video else { panic!("H.264 out") };
    assert_eq!((avc.sps.width, avc.sps.height), (640, 360));
    let ticks = |frames: &[Frame], key: bool| -> BTreeSet<i64> {
        frames.iter().filter(|f| f.is_video() && (f.keyframe || !key)).map(|f| f.pts.ticks()).collect()
    };
    let out = &received.frames;
    assert!(out.len() >= 85, "{} frames", out.len());
    assert!(out.iter().all(|f| f.pts.timebase().hz() == 90_000), "the source's clock");
    assert!(ticks(out, false).is_subset(&ticks(&frames, false)), "exact 90 kHz PTS");
    assert_eq!(ticks(out, true), ticks(&frames, true));

    // 480x270 is coded as 480x272 with a conformance window: the ladder sees 270 lines.
    let (tracks, _) = clip_hevc((480, 270), 1);
    let source = publish(&bus, "live/hevc-small", &tracks);
    let rungs = vec![Rung::new("240p", 0, 240, 300), Rung::new("270p", 0, 270, 400)];
    let ladder = tokio::spawn(run_ladder(
        bus.clone(),
        p("live/hevc-small"),
        config(rungs, "ultrafast", Duration::from_secs(10)),
        status.clone(),
    ));
    wait_for(&bus, &["live/hevc-small/240p"]).await;
    let rungs = status.snapshot().rungs;
    assert_eq!(rungs.iter().map(|r| (r.width, r.height)).collect::<Vec<_>>(), [(426, 240)]);
    drop(source);
    ladder.await.unwrap().expect("ends with the source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e tier: ffmpeg clips, GStreamer plugins"]
async fn an_aborted_ladder_ends_its_renditions_at_once() {
    let (tracks, frames) = clip(1, false);
    // A long grace period: the rendition must end because the ladder closes it, not by timeout.
    let bus =
        rill_media::Bus::new(rill_media::BusConfig { reconnect_grace: Duration::from_secs(60), ..Default::default() });
    let source = publish(&bus, "live/stop", &tracks);
    let status = LadderStatus::new();
    let cfg = config(vec![Rung::new("360p", 640, 360, 500)], "ultrafast", Duration::from_secs(10));
    let ladder = tokio::spawn(run_ladder(bus.clone(), p("live/stop"), cfg, status.clone()));
    wait_for(&bus, &["live/stop/360p"]).await;
    let out = collect(bus.subscribe_service(&p("live/stop/360p")).unwrap(), Duration::from_secs(2));
    push_paced(&source, &frames[..15], 2.0, 1).await;
    ladder.abort();
    let received = out.await.unwrap();
    assert!(received.ended, "the rendition ended without waiting for the Bus grace period");
    assert!(!bus.contains(&p("live/stop/360p")));
    assert_eq!(status.snapshot().rungs[0].state, RungState::Ended);
}
