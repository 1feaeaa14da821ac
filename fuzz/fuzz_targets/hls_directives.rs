//! What a player puts in a media playlist request: the query string (LL-HLS delivery
//! directives, `hls::parse_directives`) and the file name (`packager::TrackFile::parse`).
//! Parsed directives are checked against small packaged streams (`hls::readiness`, the
//! media playlist with `_HLS_skip`), parsed file names are looked up the way the HTTP layer
//! does. Must never panic; what parses must survive format → parse unchanged.
//!
//! Input: one byte picks a packaged stream, the rest (lossily UTF-8) is `query \0 file name`
//! (without a `\0`, the whole text is tried as both).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_media::cmaf::{Segmenter, SegmenterConfig};
use rill_media::testing::{avc_aac_tracks, SyntheticStream};
use rill_relay::hls::{self, DirectiveError, Directives, Readiness, Skip};
use rill_relay::packager::{LiveState, PackagerConfig, TrackFile};
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

struct Fixture {
    config: PackagerConfig,
    state: LiveState,
}

/// A stream of `ms` of 30 fps video (a keyframe every `gop_ms`) and, optionally, 48 kHz AAC,
/// run through the segmenter and applied to a `LiveState` as the packager does. With
/// `restart_ms`, the tracks change there (a discontinuity and a new init version).
fn build(config: PackagerConfig, ms: i64, gop_ms: i64, audio: bool, restart_ms: Option<i64>, ended: bool) -> Fixture {
    let mut segmenter = Segmenter::new(config.segmenter);
    let mut state = LiveState { epoch: 7, ..LiveState::default() };
    segmenter.set_tracks(&avc_aac_tracks(audio));
    let start = UNIX_EPOCH + Duration::from_secs(1_795_262_400);
    let before = SyntheticStream { gop_ms, cts_ms: 0, audio, video_bytes: 5 };
    let after = SyntheticStream { audio: !audio, ..before };
    let push = |segmenter: &mut Segmenter, frames: Vec<rill_media::Frame>| {
        for frame in frames {
            segmenter.push(&frame, start + Duration::from_millis(frame.dts.as_millis() as u64));
        }
    };
    match restart_ms {
        Some(restart) if restart <= ms => {
            push(&mut segmenter, before.frames(0, restart - 1));
            segmenter.set_tracks(&avc_aac_tracks(!audio));
            push(&mut segmenter, after.frames(restart, ms));
        }
        _ => push(&mut segmenter, before.frames(0, ms)),
    }
    if ended {
        segmenter.finish();
    }
    for event in segmenter.drain() {
        state.apply(event, config.window_segments);
    }
    state.ended = ended;
    Fixture { config, state }
}

fn fixtures() -> &'static [Fixture] {
    static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let default = PackagerConfig::default();
        let config = |segment_ms, part_ms, window_segments| PackagerConfig {
            segmenter: SegmenterConfig {
                segment_target: Duration::from_millis(segment_ms),
                part_target: Duration::from_millis(part_ms),
            },
            window_segments,
            ..default
        };
        // The extremes `config.rs` allows: 0.5..=30 s segments, parts of 50 ms up to half a
        // segment, windows of 3..=1000 segments.
        let short = config(500, 50, 3);
        let long = config(30_000, 15_000, 1000);
        vec![
            build(default, -1, 2000, true, None, false),  // tracks, no media
            build(default, 0, 2000, true, None, false),   // one frame
            build(default, 100, 2000, true, None, false), // the first parts of the first segment
            build(default, 5100, 2000, true, None, false),
            build(default, 5100, 2000, true, None, true),
            build(default, 30_300, 2000, true, None, false),
            build(default, 30_300, 2000, false, None, false),
            build(default, 12_000, 4000, true, Some(6000), false),
            build(default, 12_000, 4000, false, Some(6000), true),
            build(short, 10_000, 500, true, None, false),
            build(short, 10_000, 500, true, Some(3000), false),
            build(long, 40_000, 2000, true, None, false),
            build(config(1000, 500, 3), 20_000, 1000, true, None, false),
        ]
    })
}

/// The query a player would send for `d` (the inverse of `parse_directives`).
fn query(d: &Directives) -> String {
    let mut out = Vec::new();
    if let Some(msn) = d.msn {
        out.push(format!("_HLS_msn={msn}"));
    }
    if let Some(part) = d.part {
        out.push(format!("_HLS_part={part}"));
    }
    match d.skip {
        Skip::No => {}
        Skip::Segments => out.push("_HLS_skip=YES".into()),
        Skip::SegmentsAndDateRanges => out.push("_HLS_skip=v2".into()),
    }
    out.join("&")
}

/// The name the playlists give `file` (the inverse of `TrackFile::parse`).
fn name(file: &TrackFile) -> String {
    match *file {
        TrackFile::Playlist => "media.m3u8".into(),
        TrackFile::Init { epoch, version } => format!("{epoch}-init-{version}.mp4"),
        TrackFile::Segment { epoch, msn } => format!("{epoch}-{msn}.m4s"),
        TrackFile::Part { epoch, msn, index } => format!("{epoch}-{msn}.{index}.m4s"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let fixtures = fixtures();
    let Fixture { config, state } = &fixtures[pick as usize % fixtures.len()];
    let text = String::from_utf8_lossy(rest);
    let (q, file_name) = text.split_once('\0').unwrap_or((&text, &text));

    match hls::parse_directives(q) {
        Ok(d) => {
            assert!(d.part.is_none() || d.msn.is_some(), "{d:?} from {q:?}");
            assert_eq!(hls::parse_directives(&query(&d)), Ok(d), "round trip of {q:?}");
            for track in &state.tracks {
                let now = hls::readiness(track, &d, state.ended, config);
                let after_end = hls::readiness(track, &d, true, config);
                assert_eq!(after_end, Ok(Readiness::Ready), "an ended stream answers at once");
                if d.msn.is_none() {
                    assert_eq!(now, Ok(Readiness::Ready), "no _HLS_msn: no blocking");
                }
                if now != Err(DirectiveError::TooFarAhead) {
                    let playlist = hls::media_playlist(state, track, config, d.skip);
                    assert!(playlist.starts_with("#EXTM3U\n"));
                }
            }
            let _ = hls::block_timeout(state, config);
        }
        Err(DirectiveError::TooFarAhead) => panic!("the parser does not know the playlist"),
        Err(_) => {}
    }

    if let Some(file) = TrackFile::parse(file_name) {
        assert_eq!(TrackFile::parse(&name(&file)), Some(file), "round trip of {file_name:?}");
        for track in &state.tracks {
            match file {
                TrackFile::Playlist => {}
                TrackFile::Init { version, .. } => {
                    let _ = track.init(version);
                }
                TrackFile::Segment { msn, .. } => {
                    if let Some(segment) = track.segment(msn) {
                        assert_eq!(segment.msn, msn);
                    }
                }
                TrackFile::Part { msn, index, .. } => {
                    if let Some(part) = track.segment(msn).and_then(|s| s.part(index)) {
                        assert_eq!(part.index, index);
                    }
                    let _ = track.next_part();
                }
            }
        }
    }
});
