//! The live packager: what it keeps from a sequence of frames. First its state alone
//! ([`LiveState`] fed by a [`Segmenter`], no clock, no tasks): segments cut at keyframes into
//! parts, numbering, the window, a change of tracks, the end. Then [`Packagers`] on a real Bus:
//! which streams are packaged, renditions attached to their source and on its clock, playlists
//! rendered once per change, the end and the linger.

use bytes::Bytes;
use rill_media::cmaf::{Segmenter, TrackKind};
use rill_media::testing::{avc_aac_tracks, SyntheticStream};
use rill_media::{Bus, BusConfig, CodecConfig, Frame, Publisher, PublisherInfo, Tracks};
use rill_relay::hls::Skip;
use rill_relay::packager::{LiveState, LiveStream, PackagerConfig, Packagers, TrackTimeline};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// 2026-11-21T12:00:00Z: media time 0 of the streams below.
fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_262_400)
}

const STREAM: SyntheticStream = SyntheticStream { gop_ms: 2000, cts_ms: 0, audio: true, video_bytes: 1000 };

/// A stream being packaged without I/O: frames arrive at their decode time after [`start`].
struct Packaging {
    segmenter: Segmenter,
    state: LiveState,
    window: usize,
}

impl Packaging {
    fn new(config: &PackagerConfig, tracks: &Tracks) -> Packaging {
        let mut segmenter = Segmenter::new(config.segmenter);
        segmenter.set_tracks(tracks);
        let mut packaging = Packaging { segmenter, state: LiveState::default(), window: config.window_segments };
        packaging.apply();
        packaging
    }

    /// Pushes the synthetic frames of `from_ms..=to_ms`.
    fn push(&mut self, from_ms: i64, to_ms: i64) -> &LiveState {
        for frame in STREAM.frames(from_ms, to_ms) {
            self.segmenter.push(&frame, start() + Duration::from_millis(frame.dts.as_millis() as u64));
        }
        self.apply();
        &self.state
    }

    fn set_tracks(&mut self, tracks: &Tracks) {
        self.segmenter.set_tracks(tracks);
        self.apply();
    }

    fn finish(&mut self) -> &LiveState {
        self.segmenter.finish();
        self.apply();
        &self.state
    }

    fn apply(&mut self) {
        for event in self.segmenter.drain() {
            self.state.apply(event, self.window);
        }
    }
}

fn msns(track: &TrackTimeline) -> Vec<u64> {
    track.segments.iter().map(|s| s.msn).collect()
}

#[test]
fn segments_are_cut_at_keyframes_into_parts() {
    let config = PackagerConfig::default();
    let mut packaging = Packaging::new(&config, &avc_aac_tracks(true));
    let st = packaging.push(0, 10_500);
    assert_eq!(st.init_version, 1);
    assert_eq!(st.availability_start, Some(start()), "media time 0 at the first frame's arrival");
    assert!(st.unsupported.is_empty());
    let video = st.track(TrackKind::Video).unwrap();
    let audio = st.track(TrackKind::Audio).unwrap();
    assert_eq!(st.tracks.iter().map(|t| t.kind()).collect::<Vec<_>>(), [TrackKind::Video, TrackKind::Audio]);
    assert_eq!(msns(video), [0, 1, 2, 3, 4, 5], "a segment per 2 s GOP, the sixth growing");
    assert_eq!(msns(audio), msns(video), "audio is cut with the video: the same numbers");
    let ts = video.track.timescale as u64;
    for pair in video.segments.iter().collect::<Vec<_>>().windows(2) {
        let (s, next) = (pair[0], pair[1]);
        assert!(s.complete, "segment {} is complete once the next began", s.msn);
        assert_eq!(s.duration, 2 * ts, "segment {}: from keyframe to keyframe", s.msn);
        assert_eq!(s.decode_time + s.duration, next.decode_time, "no gap, no overlap");
        assert!(!s.discontinuity && s.init_version == 1);
        assert_eq!(s.wall_clock, start() + Duration::from_secs(2 * s.msn), "arrival of its first frame");
    }
    for s in &video.segments {
        assert!(s.parts[0].independent, "segment {} starts with a keyframe", s.msn);
        assert!(s.parts[1..].iter().all(|p| !p.independent));
        assert_eq!(s.parts.iter().map(|p| p.index).collect::<Vec<_>>(), (0..s.parts.len() as u32).collect::<Vec<_>>());
        assert_eq!(s.duration, s.parts.iter().map(|p| p.duration).sum::<u64>());
        let bytes: usize = s.parts.iter().map(|p| p.bytes.len()).sum();
        assert!(s.size > bytes && s.size < bytes + 64, "the parts and one styp: {} vs {bytes}", s.size);
        // Parts of about the 200 ms target: never more than the target plus one frame.
        let limit = (0.2 * ts as f64) as u64 + ts / 30 + 1;
        assert!(s.parts.iter().all(|p| p.duration <= limit), "segment {}: {:?}", s.msn, durations(s));
    }
    let complete = &video.segments[0];
    assert_eq!(complete.parts.len(), 10, "2 s in 200 ms parts: {:?}", durations(complete));
    assert_eq!(complete.parts.iter().map(|p| p.samples).sum::<u32>(), 60, "30 fps");
    // Audio segments follow the video's within one AAC frame.
    let aac_frame = audio.track.timescale as u64 * 1024 / 48_000;
    for (a, v) in audio.segments.iter().zip(&video.segments).filter(|(a, _)| a.complete) {
        let video_secs = v.duration_secs(ts as u32);
        assert!((a.duration_secs(audio.track.timescale) - video_secs).abs() <= aac_frame as f64 / 48_000.0);
    }
    // The growing segment: its first parts (a part is written once the next frame would make
    // it too long), the playlist's hint names the next.
    let growing = video.segments.back().unwrap();
    assert!(!growing.complete);
    assert_eq!(video.last_complete_msn(), Some(4));
    assert_eq!(video.last_part(), Some((5, growing.parts.last().unwrap().index)));
    assert_eq!(video.next_part(), (5, growing.next_part_index()));
    assert!(video.segment(3).is_some() && video.segment(6).is_none());
    assert_eq!(video.init(1), Some(&video.track.init));
    // 1000-byte pictures at 30 fps plus the boxes around them.
    let bitrate = video.average_bitrate();
    assert!((240_000..260_000).contains(&bitrate), "{bitrate}");
    assert!(video.peak_bitrate() >= bitrate);
}

fn durations(s: &rill_relay::packager::Segment) -> Vec<u64> {
    s.parts.iter().map(|p| p.duration).collect()
}

#[test]
fn the_window_keeps_the_newest_segments_and_their_inits() {
    let config = PackagerConfig { window_segments: 3, ..PackagerConfig::default() };
    let mut packaging = Packaging::new(&config, &avc_aac_tracks(true));
    let st = packaging.push(0, 20_500);
    let video = st.track(TrackKind::Video).unwrap();
    // The window, one more for downloads in flight, and the growing one.
    assert_eq!(msns(video), [6, 7, 8, 9, 10]);
    assert!(video.segment(5).is_none(), "older segments are gone");
    assert_eq!(video.discontinuity_sequence, 0);
    assert_eq!(video.inits.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1]);
}

#[test]
fn a_change_of_tracks_is_a_new_init_and_a_discontinuity() {
    let config = PackagerConfig { window_segments: 2, ..PackagerConfig::default() };
    let mut packaging = Packaging::new(&config, &avc_aac_tracks(true));
    packaging.push(0, 4_100);
    // The publisher comes back without audio.
    packaging.set_tracks(&avc_aac_tracks(false));
    let st = packaging.push(4_200, 8_100);
    assert_eq!(st.init_version, 2);
    assert!(st.track(TrackKind::Audio).is_none(), "a track the new settings lack is gone");
    let video = st.track(TrackKind::Video).unwrap();
    let first_new = video.segments.iter().find(|s| s.init_version == 2).unwrap();
    assert!(
        first_new.discontinuity,
        "{:?}",
        video.segments.iter().map(|s| (s.msn, s.init_version)).collect::<Vec<_>>()
    );
    assert!(video.segments.iter().take_while(|s| s.init_version == 1).all(|s| s.complete));
    // Both inits are kept while segments of the old one are listed.
    assert_eq!(video.inits.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1, 2]);
    // Once they leave the window, the old init goes, and the discontinuity is counted.
    let st = packaging.push(8_200, 16_100);
    let video = st.track(TrackKind::Video).unwrap();
    assert!(video.segments.iter().all(|s| s.init_version == 2 && !s.discontinuity));
    assert_eq!(video.inits.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [2]);
    assert_eq!(video.discontinuity_sequence, 1);
}

#[test]
fn the_end_writes_what_was_pending() {
    let config = PackagerConfig::default();
    let mut packaging = Packaging::new(&config, &avc_aac_tracks(true));
    let before: Vec<u64> =
        packaging.push(0, 3_000).tracks.iter().map(|t| t.segments.iter().map(|s| s.duration).sum()).collect();
    let st = packaging.finish();
    let video = st.track(TrackKind::Video).unwrap();
    assert_eq!(msns(video), [0, 1]);
    assert!(video.segments.iter().all(|s| s.complete), "the last video part ends its segment");
    assert_eq!(video.next_part(), (2, 0));
    for (track, before) in st.tracks.iter().zip(before) {
        let ts = track.track.timescale as u64;
        let total: u64 = track.segments.iter().map(|s| s.duration).sum();
        // Every frame up to 3 s is in, the last one as long as the one before: 91 pictures
        // (3 s and one of RTMP's 34 ms frame times, the last one held open until now), and
        // AAC frames 1 to 140 (frame 0 came before the first keyframe: no segment yet).
        let (expected, written) = match track.kind() {
            TrackKind::Video => (3034 * ts / 1000, true),
            _ => (140 * 1024, false),
        };
        assert_eq!(total, expected, "{:?}", track.kind());
        assert_eq!(total > before, written, "{:?}: {before} before the end", track.kind());
    }
    // Marking every track's last segment complete is the live stream's end (below).
}

#[test]
fn a_track_that_cannot_be_packaged_is_noted_once() {
    let config = PackagerConfig::default();
    let broken = Tracks {
        video: Some(CodecConfig::Hevc { record: Bytes::from_static(&[1, 2]) }),
        audio: avc_aac_tracks(true).audio,
        encoder: None,
    };
    let mut packaging = Packaging::new(&config, &broken);
    packaging.set_tracks(&avc_aac_tracks(true));
    packaging.set_tracks(&broken);
    let st = packaging.push(0, 2_100);
    assert_eq!(st.unsupported.len(), 1, "{:?}", st.unsupported);
    assert!(st.unsupported[0].starts_with("video: "), "{:?}", st.unsupported);
    assert!(st.track(TrackKind::Video).is_none());
    assert!(st.track(TrackKind::Audio).is_some_and(|t| !t.segments.is_empty()), "the other track is packaged");
}

fn publish(bus: &Bus, path: &str, tracks: &Tracks) -> Publisher {
    let path: rill_media::StreamPath = path.parse().unwrap();
    let publisher = bus.publish(&path, PublisherInfo { protocol: "test", peer: "test".into() }).unwrap();
    publisher.set_tracks(tracks.clone());
    publisher
}

/// Pushes `frames` to `publisher` (a rendition gets the pictures only) and waits until the
/// packager of `stream` has segment `msn`: one GOP at a time, so the packager, a Bus service,
/// is never a slow viewer.
async fn push_gop(publisher: &Publisher, stream: &LiveStream, frames: Vec<Frame>, msn: u64) {
    let rendition = stream.name.contains('/');
    for frame in frames.into_iter().filter(|f| f.is_video() || !rendition) {
        publisher.push(frame);
    }
    let packaged =
        |st: &LiveState| st.track(TrackKind::Video).and_then(|v| v.last_part()).is_some_and(|(m, _)| m >= msn);
    until("the GOP is packaged", || packaged(&stream.state()).then_some(())).await;
}

/// Waits for `check` to answer (the packager runs on other tasks); 10 s means it never will.
async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(answer) = check() {
            return answer;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_and_renditions_are_packaged_until_they_end() {
    let bus = Bus::new(BusConfig { reconnect_grace: Duration::from_millis(50), ..Default::default() });
    let config = PackagerConfig { linger: Duration::from_millis(300), ..PackagerConfig::default() };
    let packagers = Packagers::spawn(bus.clone(), config);
    let tracks = avc_aac_tracks(true);
    let source = publish(&bus, "live/cam", &tracks);
    let rendition = publish(&bus, "live/cam/360p", &avc_aac_tracks(false));
    let opus =
        Tracks { video: None, audio: Some(CodecConfig::Opus { channels: 2, sample_rate: 48_000 }), encoder: None };
    let _opus = publish(&bus, "live/cam/opus", &opus);
    let cam = until("cam is packaged", || packagers.get("cam")).await;
    let cam_360p = until("its rendition is packaged", || packagers.get("cam/360p")).await;
    // Each GOP reaches the rendition after the source, as from a transcoder.
    for gop in 0..3 {
        let frames = STREAM.frames(gop * 2000, gop * 2000 + 1999);
        push_gop(&source, &cam, frames.clone(), gop as u64).await;
        push_gop(&rendition, &cam_360p, frames, gop as u64).await;
    }
    for (publisher, stream) in [(&source, &cam), (&rendition, &cam_360p)] {
        push_gop(publisher, stream, STREAM.frames(6000, 6000), 2).await;
    }
    let complete = |st: &LiveState| st.track(TrackKind::Video).and_then(|v| v.last_complete_msn()) == Some(2);
    until("three segments complete", || (complete(&cam.state()) && complete(&cam_360p.state())).then_some(())).await;

    assert_eq!(packagers.live_names(), ["cam"], "renditions are not streams of their own");
    assert!(packagers.get("cam/opus").is_none(), "the Opus feed is for WebRTC, not a rendition");
    assert_eq!(packagers.renditions("cam").iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["cam/360p"]);
    assert_eq!(packagers.stats.streams.load(Ordering::Relaxed), 2);
    assert_eq!(packagers.stats.segments.load(Ordering::Relaxed), 3 * 3, "video and audio of cam, video of 360p");
    // A rendition's clock is its source's: its program date-times are the source's media time 0
    // plus its own media time, whenever its frames arrived.
    let source_start = cam.state().availability_start.unwrap();
    assert_eq!(cam_360p.state().availability_start, Some(source_start));
    for s in &cam_360p.state().track(TrackKind::Video).unwrap().segments {
        let expected = source_start + Duration::from_millis(2000 * s.msn);
        let off = s.wall_clock.duration_since(expected).or_else(|e| Ok::<_, ()>(e.duration())).unwrap();
        assert!(off < Duration::from_millis(1), "segment {}: {:?} for {expected:?}", s.msn, s.wall_clock);
    }
    // Every player of a stream gets the same text until the next part: rendered once.
    let playlist = cam.media_playlist(TrackKind::Video, Skip::No).unwrap();
    assert_eq!(cam.media_playlist(TrackKind::Video, Skip::No).unwrap().as_ptr(), playlist.as_ptr());
    assert!(!String::from_utf8_lossy(&playlist).contains("#EXT-X-ENDLIST"));

    drop(source);
    drop(rendition);
    until("the stream ends", || cam.state().ended.then_some(())).await;
    assert!(cam.state().tracks.iter().all(|t| t.segments.iter().all(|s| s.complete)));
    let ended = cam.media_playlist(TrackKind::Video, Skip::No).unwrap();
    assert!(String::from_utf8_lossy(&ended).ends_with("#EXT-X-ENDLIST\n"), "a new version, a new text");
    assert!(packagers.live_names().is_empty());
    assert!(packagers.get("cam").is_some(), "an ended stream's playlists stay up for the linger");
    until("the linger is over", || {
        let gone = packagers.get("cam").is_none() && packagers.get("cam/360p").is_none();
        (gone && packagers.stats.streams.load(Ordering::Relaxed) == 0).then_some(())
    })
    .await;
}
