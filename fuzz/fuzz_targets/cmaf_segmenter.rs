//! The input as a sequence of operations on `cmaf::Segmenter`: track changes (valid and garbage
//! codec configurations), video and audio frames with odd timestamps (equal, backwards, huge
//! jumps, negative, pts < dts), keyframes or not, empty payloads, wall-clock jumps, `finish`.
//! Events are drained after every operation and applied to a packager `LiveState`, whose
//! playlists are rendered at the end. Must never panic, and every part must hold:
//!
//! - its bytes are `prft` + `moof` + `mdat` and nothing else (they parse back with mp4-atom);
//! - one `traf` with one `trun` of `Part::samples` entries whose durations sum to
//!   `Part::duration`; `tfdt` (and the `prft` media time) is `Part::decode_time`; the `mdat`
//!   holds exactly the sample sizes the `trun` lists;
//! - per track, `(msn, index)` only increases, and so does the `mfhd` sequence number (until
//!   the next change of tracks restarts it with a new init segment);
//! - segment numbers have no gaps (over all tracks, a part's `msn` is at most one more than
//!   the highest so far, starting at 0).
//!
//! Timestamps are shaped like the RTMP demuxer's: a start anywhere in `u32` milliseconds, then
//! steps of at most an `i32` each way (what `Unwrapper32` produces), pts = dts + an
//! FLV composition time (a signed 24-bit value).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mp4_atom::{Decode, Mdat, Moof, Prft};
use rill_media::cmaf::{fmp4, Part, Segmenter, SegmenterConfig, SegmenterEvent, TrackKind};
use rill_media::testing::avc_aac_tracks;
use rill_media::{AacConfig, AvcConfig, CodecConfig, Frame, MediaTime, TrackId, Tracks};
use rill_relay::hls::{self, Skip};
use rill_relay::packager::{LiveState, PackagerConfig};
use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

/// Reads the fuzz input front to back; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// An FLV composition time: signed 24 bits.
    fn i24(&mut self) -> i64 {
        let raw = u32::from_le_bytes([self.byte(), self.byte(), self.byte(), 0]);
        ((raw << 8) as i32 >> 8) as i64
    }

    fn bytes(&mut self, n: usize) -> Bytes {
        let n = n.min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Bytes::copy_from_slice(taken)
    }
}

fn tracks(input: &mut Input) -> Tracks {
    let valid = avc_aac_tracks(true);
    let avc = valid.video.clone();
    let aac = valid.audio.clone();
    let garbage = |input: &mut Input| {
        let n = input.byte() as usize % 48;
        input.bytes(n)
    };
    let (video, audio) = match input.byte() % 10 {
        0 => (avc, aac),
        1 => (avc, None),
        2 => (None, aac),
        // Whatever AudioSpecificConfig parses: odd and explicit (24-bit) sample rates.
        3 => {
            let asc = garbage(input);
            (avc, AacConfig::from_asc(asc).ok().map(CodecConfig::Aac))
        }
        4 => (Some(CodecConfig::Hevc { record: garbage(input) }), aac),
        5 => (Some(CodecConfig::Av1 { record: garbage(input) }), aac),
        6 => {
            let opus = CodecConfig::Opus { channels: input.byte(), sample_rate: input.u32() };
            (if input.byte() & 1 == 0 { avc } else { None }, Some(opus))
        }
        // A valid SPS next to a record that is not one.
        7 => {
            let Some(CodecConfig::Avc(c)) = avc else { unreachable!() };
            (Some(CodecConfig::Avc(AvcConfig { record: garbage(input), ..c })), aac)
        }
        8 => (None, None),
        // Same codecs, another encoder name: not a change of tracks.
        _ => return Tracks { encoder: Some("fuzz".into()), ..valid },
    };
    Tracks { video, audio, encoder: None }
}

/// The last part seen of a track, and the `mfhd` sequence of the current init segment.
#[derive(Default)]
struct Seen {
    last: Option<(u64, u32)>,
    sequence: Option<u32>,
}

fn check(
    part: &Part,
    track_ids: &HashMap<TrackKind, (u32, u32)>,
    seen: &mut HashMap<TrackKind, Seen>,
    next_msn: &mut u64,
) {
    let (track_id, timescale) = *track_ids.get(&part.kind).expect("a part of a track the last Tracks event has");
    assert_eq!(part.timescale, timescale);
    assert!(part.samples > 0);
    let mut rest = &part.bytes[..];
    let prft = Prft::decode(&mut rest).expect("prft");
    let moof = Moof::decode(&mut rest).expect("moof");
    let mdat = Mdat::decode(&mut rest).expect("mdat");
    assert!(rest.is_empty(), "{} bytes after mdat", rest.len());
    assert_eq!(prft.reference_track_id, track_id);
    assert_eq!(prft.media_time, part.decode_time);
    let [traf] = &moof.traf[..] else { panic!("{} trafs", moof.traf.len()) };
    assert_eq!(traf.tfhd.track_id, track_id);
    assert_eq!(traf.tfdt.as_ref().expect("tfdt").base_media_decode_time, part.decode_time);
    let [trun] = &traf.trun[..] else { panic!("{} truns", traf.trun.len()) };
    assert_eq!(trun.entries.len(), part.samples as usize);
    let duration: u64 = trun.entries.iter().map(|e| e.duration.expect("sample duration") as u64).sum();
    assert_eq!(duration, part.duration);
    let size: u64 = trun.entries.iter().map(|e| e.size.expect("sample size") as u64).sum();
    assert_eq!(mdat.data.len() as u64, size);

    // Segment numbers have no gaps: a packager's timeline finds segment `msn` at `msn - first`.
    assert!(part.msn <= *next_msn, "{:?} part {}.{} after segment {}", part.kind, part.msn, part.index, *next_msn - 1);
    *next_msn = (*next_msn).max(part.msn + 1);
    let seen = seen.entry(part.kind).or_default();
    let at = (part.msn, part.index);
    if let Some(last) = seen.last {
        assert!(at > last, "{:?} part {at:?} after {last:?}", part.kind);
    }
    seen.last = Some(at);
    let sequence = moof.mfhd.sequence_number;
    if let Some(last) = seen.sequence {
        assert!(sequence > last, "{:?} mfhd sequence {sequence} after {last}", part.kind);
    }
    seen.sequence = Some(sequence);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    // Within what `config.rs` accepts: 0.5..=30 s segments, parts of 50 ms up to half a segment.
    let segment_ms = 500 + input.u16() as u64 % 29_501;
    let part_ms = 50 + input.u16() as u64 % (segment_ms / 2 - 50 + 1);
    let config = PackagerConfig {
        segmenter: SegmenterConfig {
            segment_target: Duration::from_millis(segment_ms),
            part_target: Duration::from_millis(part_ms),
        },
        window_segments: 3 + input.byte() as usize % 8,
        ..PackagerConfig::default()
    };
    let mut segmenter = Segmenter::new(config.segmenter);
    let mut state = LiveState { epoch: 1, ..LiveState::default() };
    let start = input.u32() as i64;
    let (mut video_ms, mut audio_ms) = (start, start);
    let mut now = UNIX_EPOCH + Duration::from_secs(1_795_262_400);
    let mut track_ids = HashMap::new();
    let mut seen: HashMap<TrackKind, Seen> = HashMap::new();
    let mut next_msn = 0;

    while !input.is_empty() {
        let op = input.byte();
        match op % 16 {
            0 => segmenter.set_tracks(&tracks(&mut input)),
            1..=13 => {
                let video = op % 16 <= 7;
                let shape = input.byte();
                let (clock, frame_ms) = if video { (&mut video_ms, 33) } else { (&mut audio_ms, 21) };
                let step = match shape % 8 {
                    0 => frame_ms,
                    1 => frame_ms + 1,
                    2 => 0,
                    3 => -(input.byte() as i64),
                    4 => input.byte() as i64,
                    5 => input.u32() as i32 as i64,
                    6 => -frame_ms,
                    _ => 2 * frame_ms,
                };
                *clock += step;
                let dts = *clock;
                let cts = match (shape >> 3) & 3 {
                    0 => 0,
                    1 => 66,
                    2 => -33,
                    _ => input.i24(),
                };
                let payload = if shape & 0x20 != 0 {
                    Bytes::new()
                } else {
                    let n = input.byte() as usize;
                    input.bytes(n)
                };
                let frame = Frame {
                    track: if video { TrackId::VIDEO } else { TrackId::AUDIO },
                    pts: MediaTime::from_millis(dts + cts),
                    dts: MediaTime::from_millis(dts),
                    keyframe: shape & 0x40 != 0,
                    payload,
                };
                if step > 0 {
                    now += Duration::from_millis(step as u64 % 10_000);
                }
                segmenter.push(&frame, now);
            }
            14 => segmenter.finish(),
            _ => {
                let jump = Duration::from_millis(input.u32() as u64);
                now = if input.byte() & 1 == 0 { now + jump } else { now.checked_sub(jump).unwrap_or(now) };
            }
        }
        for event in segmenter.drain() {
            match &event {
                SegmenterEvent::Tracks(tracks) => {
                    track_ids = tracks.iter().map(|t| (t.kind, (t.track_id, t.timescale))).collect();
                    for track in tracks {
                        assert_eq!(track.timescale, fmp4::timescale(&track.codec));
                        assert!(track.timescale > 0, "{:?} track with a zero timescale", track.kind);
                        seen.entry(track.kind).or_default().sequence = None;
                    }
                }
                SegmenterEvent::Unsupported { .. } => {}
                SegmenterEvent::Part(part) => check(part, &track_ids, &mut seen, &mut next_msn),
            }
            state.apply(event, config.window_segments);
        }
    }

    let _ = hls::multivariant(&state, &[]);
    for track in &state.tracks {
        let _ = hls::media_playlist(&state, track, &config, Skip::No);
        let _ = hls::media_playlist(&state, track, &config, Skip::Segments);
    }
});
