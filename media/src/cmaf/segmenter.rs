//! Cuts a live stream's frames into CMAF segments and low-latency parts, one CMAF track per
//! stream track. Sans-IO: the caller feeds tracks and frames with their arrival time and
//! receives [`SegmenterEvent`]s; LL-HLS, DASH and the recorder all consume the same parts.
//!
//! Boundaries are decided by a *leader* track (video when there is one, else audio):
//! a segment starts at a leader keyframe once the current one has lasted about the target
//! segment duration; a part ends before the leader frame that would push it past the part
//! target (parts may end mid-GOP). Other tracks are cut at the same media times, so segment
//! numbers (`msn`) and part indices line up across tracks.

use super::fmp4::{self, FragmentHeader, Sample};
use crate::frame::Frame;
use crate::time::{MediaTime, Timebase};
use crate::track::{CodecConfig, Tracks};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Segment and part durations to aim for.
#[derive(Clone, Copy, Debug)]
pub struct SegmenterConfig {
    pub segment_target: Duration,
    pub part_target: Duration,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig { segment_target: Duration::from_secs(2), part_target: Duration::from_millis(200) }
    }
}

/// Which of the stream's tracks a CMAF track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Video,
    Audio,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        }
    }
}

/// A CMAF track: its codec, clock and init segment.
#[derive(Debug)]
pub struct CmafTrack {
    pub kind: TrackKind,
    /// `tkhd` track id (1 for video, 2 for audio).
    pub track_id: u32,
    pub codec: CodecConfig,
    pub timescale: u32,
    pub init: Bytes,
}

/// One part: a `moof` + `mdat` (with `prft`) of one track.
#[derive(Clone, Debug)]
pub struct Part {
    pub kind: TrackKind,
    /// Media sequence number of the segment the part belongs to.
    pub msn: u64,
    /// Index of the part within its segment (0 starts the segment).
    pub index: u32,
    /// The first sample is a keyframe: a player can start here.
    pub independent: bool,
    /// The last part of its segment (the segment is complete).
    pub ends_segment: bool,
    /// Number of samples (frames).
    pub samples: u32,
    /// The segment this part starts follows a change of tracks (a new init segment).
    pub discontinuity: bool,
    /// Decode time of the first sample and the part's duration, in `timescale` ticks.
    pub decode_time: u64,
    pub duration: u64,
    pub timescale: u32,
    /// Wall-clock time of the part's first sample (for `EXT-X-PROGRAM-DATE-TIME`, `prft`).
    pub wall_clock: SystemTime,
    pub bytes: Bytes,
}

impl Part {
    pub fn duration_secs(&self) -> f64 {
        self.duration as f64 / self.timescale as f64
    }

    pub fn decode_secs(&self) -> f64 {
        self.decode_time as f64 / self.timescale as f64
    }
}

/// What the segmenter produced.
#[derive(Debug)]
pub enum SegmenterEvent {
    /// The tracks to package (first, and after the stream's tracks changed). Parts that follow
    /// belong to these tracks; the next segment is a discontinuity.
    Tracks(Vec<Arc<CmafTrack>>),
    /// A track that cannot be packaged (its frames are ignored).
    Unsupported {
        kind: TrackKind,
        reason: String,
    },
    Part(Part),
}

/// The segmenter of one live stream.
pub struct Segmenter {
    config: SegmenterConfig,
    tracks: Option<Tracks>,
    lanes: Vec<Lane>,
    /// Index into `lanes` of the track that decides boundaries.
    leader: Option<usize>,
    msn: u64,
    /// A part of segment `msn` was written: the next segment takes the next number.
    segment_emitted: bool,
    part_index: u32,
    /// Leader time (ticks) where the current segment / part started; `None` before the first keyframe.
    segment_start: Option<i64>,
    part_start: i64,
    discontinuity: bool,
    started: bool,
    /// Media time (leader ticks) ↔ wall clock.
    anchor: Option<(i64, SystemTime)>,
    events: Vec<SegmenterEvent>,
}

/// Frames of one track waiting to become a part.
struct Lane {
    track: Arc<CmafTrack>,
    open: Vec<Pending>,
    sequence: u32,
    /// AAC frames get exact sample-count timestamps while the input stays within a frame of them.
    next_audio_dts: Option<i64>,
    samples_per_frame: Option<i64>,
    last_duration: i64,
}

struct Pending {
    dts: i64,
    pts: i64,
    keyframe: bool,
    data: Bytes,
    arrived: SystemTime,
}

const MAX_CLOCK_DRIFT: Duration = Duration::from_secs(1);

impl Segmenter {
    pub fn new(config: SegmenterConfig) -> Segmenter {
        Segmenter {
            config,
            tracks: None,
            lanes: Vec::new(),
            leader: None,
            msn: 0,
            segment_emitted: false,
            part_index: 0,
            segment_start: None,
            part_start: 0,
            discontinuity: false,
            started: false,
            anchor: None,
            events: Vec::new(),
        }
    }

    pub fn config(&self) -> SegmenterConfig {
        self.config
    }

    /// Sets the stream's tracks. Unchanged tracks are a no-op; changed tracks end the current
    /// segment and start new CMAF tracks at the next keyframe.
    pub fn set_tracks(&mut self, tracks: &Tracks) {
        if let Some(current) = &self.tracks {
            if current.video == tracks.video && current.audio == tracks.audio {
                return;
            }
        }
        if self.started {
            self.flush_all();
            self.discontinuity = true;
            self.next_segment();
        }
        self.tracks = Some(tracks.clone());
        self.lanes.clear();
        self.leader = None;
        self.segment_start = None;
        self.part_index = 0;
        let candidates = [(TrackKind::Video, 1, &tracks.video), (TrackKind::Audio, 2, &tracks.audio)];
        for (kind, track_id, codec) in candidates {
            let Some(codec) = codec else { continue };
            match fmp4::init_segment(track_id, codec) {
                Ok(init) => {
                    let samples_per_frame = matches!(codec, CodecConfig::Aac(_)).then_some(1024);
                    self.lanes.push(Lane {
                        track: Arc::new(CmafTrack {
                            kind,
                            track_id,
                            codec: codec.clone(),
                            timescale: fmp4::timescale(codec),
                            init,
                        }),
                        open: Vec::new(),
                        sequence: 0,
                        next_audio_dts: None,
                        samples_per_frame,
                        last_duration: 0,
                    });
                }
                Err(e) => self.events.push(SegmenterEvent::Unsupported { kind, reason: e.to_string() }),
            }
        }
        self.leader = (!self.lanes.is_empty()).then_some(0);
        self.events.push(SegmenterEvent::Tracks(self.lanes.iter().map(|l| l.track.clone()).collect()));
    }

    /// Adds a frame (in decode order per track) that arrived at `now`.
    pub fn push(&mut self, frame: &Frame, now: SystemTime) {
        let kind = if frame.is_video() { TrackKind::Video } else { TrackKind::Audio };
        let Some(lane_index) = self.lanes.iter().position(|l| l.track.kind == kind) else { return };
        let Some(leader) = self.leader else { return };
        let lane = &mut self.lanes[lane_index];
        let timescale = Timebase::new(lane.track.timescale).expect("timescales are non-zero");
        let mut dts = frame.dts.rescale(timescale).ticks();
        let pts = frame.pts.rescale(timescale).ticks().max(dts);
        if let Some(per_frame) = lane.samples_per_frame {
            if let Some(expected) = lane.next_audio_dts {
                if (dts - expected).abs() <= per_frame {
                    dts = expected;
                }
            }
            lane.next_audio_dts = Some(dts + per_frame);
        }
        let keyframe = frame.keyframe || kind == TrackKind::Audio;
        let pending = Pending { dts, pts: pts.max(dts), keyframe, data: frame.payload.clone(), arrived: now };

        if lane_index != leader {
            if self.segment_start.is_some() {
                self.lanes[lane_index].open.push(pending);
            }
            return;
        }
        match self.segment_start {
            None => {
                if !keyframe {
                    return; // a segment starts with a keyframe
                }
                self.start_segment(dts, now);
            }
            Some(segment_start) => {
                let ts = timescale.hz() as i64;
                let segment_due = ticks(self.config.segment_target, ts) * 9 / 10;
                // The next frame's duration, less 1 ms of timestamp rounding (RTMP's 30 fps is 33/34 ms).
                let frame_estimate = (self.lanes[leader].last_estimate(ts) - ts / 1000).max(1);
                let part_limit = ticks(self.config.part_target, ts);
                if keyframe && dts - segment_start >= segment_due {
                    self.cut(dts, true);
                    self.next_segment();
                    self.discontinuity = false;
                    self.start_segment(dts, now);
                } else if dts + frame_estimate - self.part_start > part_limit && !self.lanes[leader].open.is_empty() {
                    self.cut(dts, false);
                    self.part_index += 1;
                    self.part_start = dts;
                }
            }
        }
        self.lanes[leader].open.push(pending);
    }

    /// Ends the stream: the open parts are written. Frames pushed after this start a new segment.
    pub fn finish(&mut self) {
        self.flush_all();
        self.next_segment();
        self.segment_start = None;
    }

    /// A gap in the input (frames were lost upstream): the open parts are written, and the next
    /// segment starts at the next leader keyframe, marked as a discontinuity.
    pub fn discontinue(&mut self) {
        if self.started {
            self.flush_all();
            self.next_segment();
            self.discontinuity = true;
        }
        self.segment_start = None;
    }

    /// Events produced so far, oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, SegmenterEvent> {
        self.events.drain(..)
    }

    /// Moves on to the next segment. Its number is the next one only if a part of the current one
    /// was written: a number without parts would be a gap in the timelines (or, after `finish`,
    /// the same number twice).
    fn next_segment(&mut self) {
        if self.segment_emitted {
            self.msn += 1;
            self.segment_emitted = false;
        }
        self.part_index = 0;
    }

    fn start_segment(&mut self, dts: i64, now: SystemTime) {
        self.segment_start = Some(dts);
        self.part_start = dts;
        self.started = true;
        let ts = self.leader_timescale();
        match self.anchor {
            Some(_) if self.wall_clock(dts, ts).is_some_and(|w| drift(w, now) <= MAX_CLOCK_DRIFT) => {}
            _ => self.anchor = Some((dts, now)),
        }
    }

    fn leader_timescale(&self) -> i64 {
        self.leader.map_or(90_000, |l| self.lanes[l].track.timescale as i64)
    }

    /// Wall-clock time of leader tick `t`.
    fn wall_clock(&self, t: i64, timescale: i64) -> Option<SystemTime> {
        let (anchor_t, anchor_wall) = self.anchor?;
        let offset_ns = (t - anchor_t) as i128 * 1_000_000_000 / timescale as i128;
        Some(if offset_ns >= 0 {
            anchor_wall + Duration::from_nanos(offset_ns as u64)
        } else {
            anchor_wall.checked_sub(Duration::from_nanos((-offset_ns) as u64)).unwrap_or(anchor_wall)
        })
    }

    /// Closes the current part of every track at leader time `boundary`.
    fn cut(&mut self, boundary: i64, ends_segment: bool) {
        let leader_ts = self.leader_timescale();
        for i in 0..self.lanes.len() {
            let ts = self.lanes[i].track.timescale as i64;
            let lane_boundary = MediaTime::new(boundary, timebase(leader_ts)).rescale(timebase(ts)).ticks();
            let split =
                self.lanes[i].open.iter().position(|p| p.dts >= lane_boundary).unwrap_or(self.lanes[i].open.len());
            let rest = self.lanes[i].open.split_off(split);
            let next_dts = if Some(i) == self.leader { Some(lane_boundary) } else { rest.first().map(|p| p.dts) };
            let closing = std::mem::replace(&mut self.lanes[i].open, rest);
            self.emit(i, closing, next_dts, ends_segment);
        }
    }

    fn flush_all(&mut self) {
        for i in 0..self.lanes.len() {
            let closing = std::mem::take(&mut self.lanes[i].open);
            self.emit(i, closing, None, true);
        }
    }

    /// Writes `frames` as one part of lane `i`. `next_dts` (when known) gives the last sample's duration.
    fn emit(&mut self, i: usize, frames: Vec<Pending>, next_dts: Option<i64>, ends_segment: bool) {
        let Some(first) = frames.first() else { return };
        let leader_ts = self.leader_timescale();
        let lane = &mut self.lanes[i];
        let ts = lane.track.timescale as i64;
        let mut samples = Vec::with_capacity(frames.len());
        for (n, f) in frames.iter().enumerate() {
            let next = frames.get(n + 1).map(|p| p.dts).or(next_dts);
            let duration = match next {
                Some(next) if next > f.dts => next - f.dts,
                _ => lane.last_estimate(ts),
            };
            lane.last_duration = duration;
            samples.push(Sample {
                duration: duration.clamp(0, u32::MAX as i64) as u32,
                composition_offset: (f.pts - f.dts).clamp(0, i32::MAX as i64) as i32,
                keyframe: f.keyframe,
                data: f.data.clone(),
            });
        }
        let decode_time = first.dts.max(0) as u64;
        let duration: u64 = samples.iter().map(|s| s.duration as u64).sum();
        let first_in_leader_ticks = MediaTime::new(first.dts, timebase(ts)).rescale(timebase(leader_ts)).ticks();
        let (track_id, kind, timescale) = (lane.track.track_id, lane.track.kind, lane.track.timescale);
        lane.sequence = lane.sequence.wrapping_add(1);
        let sequence = lane.sequence;
        let wall_clock = self.wall_clock(first_in_leader_ticks, leader_ts).unwrap_or(first.arrived);
        let header =
            FragmentHeader { sequence, track_id, base_decode_time: decode_time, producer_time: Some(wall_clock) };
        let fragment = fmp4::fragment(&header, &samples);
        self.segment_emitted |= fragment.is_ok();
        match fragment {
            Ok(bytes) => self.events.push(SegmenterEvent::Part(Part {
                kind,
                msn: self.msn,
                index: self.part_index,
                independent: samples[0].keyframe,
                ends_segment,
                samples: samples.len() as u32,
                discontinuity: self.discontinuity && self.part_index == 0,
                decode_time,
                duration,
                timescale,
                wall_clock,
                bytes,
            })),
            Err(e) => self.events.push(SegmenterEvent::Unsupported { kind, reason: e.to_string() }),
        }
    }
}

impl Lane {
    /// The duration to assume for a sample whose successor has not arrived.
    fn last_estimate(&self, timescale: i64) -> i64 {
        if let Some(per_frame) = self.samples_per_frame {
            return per_frame;
        }
        if self.last_duration > 0 {
            self.last_duration
        } else {
            timescale / 30
        }
    }
}

fn ticks(d: Duration, timescale: i64) -> i64 {
    (d.as_nanos() as i128 * timescale as i128 / 1_000_000_000) as i64
}

fn drift(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).or_else(|_| b.duration_since(a)).unwrap_or_default()
}

fn timebase(hz: i64) -> Timebase {
    Timebase::new(hz as u32).expect("track timescales are non-zero")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::TrackId;
    use crate::testing::{avc_aac_tracks as tracks, SyntheticStream};
    use mp4_atom::{Decode, Ftyp, Mdat, Moof, Moov, Prft, Styp};

    fn video(ms: i64, cts: i64, keyframe: bool) -> Frame {
        Frame {
            track: TrackId::VIDEO,
            pts: MediaTime::from_millis(ms + cts),
            dts: MediaTime::from_millis(ms),
            keyframe,
            payload: Bytes::from(vec![0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }]),
        }
    }

    fn audio(ms: i64) -> Frame {
        Frame {
            track: TrackId::AUDIO,
            pts: MediaTime::from_millis(ms),
            dts: MediaTime::from_millis(ms),
            keyframe: true,
            payload: Bytes::from_static(&[0x21, 0x10]),
        }
    }

    /// 30 fps video with B-frames (cts 66 ms) and a keyframe every `gop_ms`, plus 48 kHz AAC.
    fn run(seconds: i64, gop_ms: i64, with_audio: bool) -> (Vec<Arc<CmafTrack>>, Vec<Part>) {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_tracks(&tracks(with_audio));
        let start = SystemTime::now();
        let stream = SyntheticStream { gop_ms, cts_ms: 66, audio: with_audio, video_bytes: 5 };
        for frame in stream.frames(0, seconds * 1000 - 1) {
            s.push(&frame, start + Duration::from_millis(frame.dts.as_millis() as u64));
        }
        s.finish();
        let mut out_tracks = Vec::new();
        let mut parts = Vec::new();
        for event in s.drain() {
            match event {
                SegmenterEvent::Tracks(t) => out_tracks = t,
                SegmenterEvent::Part(p) => parts.push(p),
                SegmenterEvent::Unsupported { reason, .. } => panic!("{reason}"),
            }
        }
        (out_tracks, parts)
    }

    #[test]
    fn init_segments_parse_back() {
        let (tracks, _) = run(1, 2000, true);
        assert_eq!(tracks.len(), 2);
        let mut video = &tracks[0].init[..];
        let ftyp = Ftyp::decode(&mut video).unwrap();
        assert_eq!(ftyp.major_brand, b"iso6".into());
        let moov = Moov::decode(&mut video).unwrap();
        assert_eq!(moov.trak[0].mdia.mdhd.timescale, 90_000);
        assert_eq!(moov.trak[0].tkhd.width.integer(), 1280);
        let mut audio = &tracks[1].init[..];
        Ftyp::decode(&mut audio).unwrap();
        let moov = Moov::decode(&mut audio).unwrap();
        assert_eq!(moov.trak[0].mdia.mdhd.timescale, 48_000);
        assert_eq!(moov.trak[0].tkhd.track_id, 2);
        assert!(Styp::decode(&mut &fmp4::segment_type()[..]).is_ok());
    }

    #[test]
    fn parts_are_continuous_and_segments_start_on_keyframes() {
        let (_, parts) = run(10, 2000, true);
        for kind in [TrackKind::Video, TrackKind::Audio] {
            let parts: Vec<&Part> = parts.iter().filter(|p| p.kind == kind).collect();
            let mut expected_time = parts[0].decode_time;
            let mut sequence = 0;
            for p in &parts {
                // tfdt continuity: each part starts where the previous one ended.
                let tolerance = if kind == TrackKind::Video { 0 } else { 1024 };
                assert!(p.decode_time.abs_diff(expected_time) <= tolerance, "{kind:?} {}.{}", p.msn, p.index);
                expected_time = p.decode_time + p.duration;
                let mut bytes = &p.bytes[..];
                let prft = Prft::decode(&mut bytes).unwrap();
                assert_eq!(prft.media_time, p.decode_time);
                let moof = Moof::decode(&mut bytes).unwrap();
                assert!(moof.mfhd.sequence_number > sequence);
                sequence = moof.mfhd.sequence_number;
                let traf = &moof.traf[0];
                assert_eq!(traf.tfdt.as_ref().unwrap().base_media_decode_time, p.decode_time);
                let trun = &traf.trun[0];
                let total: u64 = trun.entries.iter().map(|e| e.duration.unwrap() as u64).sum();
                assert_eq!(total, p.duration);
                let mdat = Mdat::decode(&mut bytes).unwrap();
                let sizes: usize = trun.entries.iter().map(|e| e.size.unwrap() as usize).sum();
                assert_eq!(mdat.data.len(), sizes);
                if kind == TrackKind::Video {
                    // B-frame reordering survives as a composition offset (66 ms = 5940 ticks).
                    assert!(trun.entries.iter().all(|e| e.cts == Some(5940)));
                    assert_eq!(p.independent, p.index == 0, "{}.{}", p.msn, p.index);
                    assert!(p.duration_secs() <= 0.2 + 0.001, "part {}.{} lasts {}", p.msn, p.index, p.duration_secs());
                }
            }
        }
        // Video segments are 2 s (one GOP); audio is cut at the same times.
        let video_segments: Vec<u64> =
            parts.iter().filter(|p| p.kind == TrackKind::Video && p.index == 0).map(|p| p.msn).collect();
        assert_eq!(video_segments, (0..5).collect::<Vec<_>>());
        for msn in 1..5 {
            let v = parts.iter().find(|p| p.kind == TrackKind::Video && p.msn == msn && p.index == 0).unwrap();
            let a = parts.iter().find(|p| p.kind == TrackKind::Audio && p.msn == msn && p.index == 0).unwrap();
            assert!(
                (v.decode_secs() - a.decode_secs()).abs() < 0.025,
                "segment {msn}: {} vs {}",
                v.decode_secs(),
                a.decode_secs()
            );
        }
    }

    #[test]
    fn long_gops_make_long_segments_with_short_parts() {
        let (_, parts) = run(12, 4000, false);
        let starts: Vec<f64> = parts.iter().filter(|p| p.index == 0).map(|p| p.decode_secs()).collect();
        assert_eq!(starts.len(), 3);
        assert!((starts[1] - starts[0] - 4.0).abs() < 0.001);
        assert!(parts.iter().all(|p| p.duration_secs() <= 0.201));
    }

    #[test]
    fn frames_before_the_first_keyframe_are_dropped() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_tracks(&tracks(true));
        let now = SystemTime::now();
        s.push(&audio(0), now);
        s.push(&video(0, 0, false), now);
        s.push(&video(33, 0, true), now);
        s.push(&audio(40), now);
        s.finish();
        let parts: Vec<Part> =
            s.drain().filter_map(|e| if let SegmenterEvent::Part(p) = e { Some(p) } else { None }).collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.msn == 0));
        assert_eq!(parts[0].decode_time, 33 * 90);
    }

    #[test]
    fn changed_tracks_start_a_discontinuity() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_tracks(&tracks(false));
        let now = SystemTime::now();
        s.push(&video(0, 0, true), now);
        s.push(&video(33, 0, false), now);
        s.set_tracks(&tracks(false)); // identical: nothing happens
        s.set_tracks(&tracks(true));
        s.push(&video(66, 0, true), now);
        s.push(&video(100, 0, false), now);
        s.finish();
        let events: Vec<SegmenterEvent> = s.drain().collect();
        let tracks_events = events.iter().filter(|e| matches!(e, SegmenterEvent::Tracks(_))).count();
        assert_eq!(tracks_events, 2);
        let parts: Vec<&Part> =
            events.iter().filter_map(|e| if let SegmenterEvent::Part(p) = e { Some(p) } else { None }).collect();
        assert_eq!((parts[0].msn, parts[0].discontinuity), (0, false));
        assert_eq!((parts[1].msn, parts[1].discontinuity), (1, true));
    }

    #[test]
    fn a_gap_ends_the_segment_and_the_next_keyframe_starts_a_discontinuity() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        let now = SystemTime::now();
        s.set_tracks(&tracks(false));
        s.push(&video(0, 0, true), now);
        s.push(&video(33, 0, false), now);
        s.discontinue(); // frames were lost here
        s.push(&video(5000, 0, false), now); // not a keyframe: waits
        s.push(&video(5033, 0, true), now);
        s.push(&video(5066, 0, false), now);
        s.finish();
        let parts: Vec<Part> =
            s.drain().filter_map(|e| if let SegmenterEvent::Part(p) = e { Some(p) } else { None }).collect();
        let summary: Vec<_> = parts.iter().map(|p| (p.msn, p.ends_segment, p.discontinuity, p.samples)).collect();
        assert_eq!(summary, vec![(0, true, false, 2), (1, true, true, 2)]);
        assert_eq!(parts[1].decode_time, 5033 * 90, "the timeline keeps the gap");
    }

    #[test]
    fn segment_numbers_have_no_gaps_or_repeats() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        let now = SystemTime::now();
        s.set_tracks(&tracks(false));
        s.push(&video(0, 0, true), now);
        s.set_tracks(&tracks(true)); // segment 0 ends
        s.push(&video(33, 0, false), now); // no keyframe: nothing written
        s.set_tracks(&tracks(false)); // changed again before any part of segment 1
        s.push(&video(66, 0, true), now);
        s.finish(); // segment 1 ends
        s.push(&video(100, 0, true), now); // frames after `finish` start segment 2
        s.finish();
        let parts = s.drain().filter_map(|e| if let SegmenterEvent::Part(p) = e { Some(p) } else { None });
        assert_eq!(parts.map(|p| p.msn).collect::<Vec<_>>(), vec![0, 1, 2]);
    }

    #[test]
    fn invalid_config_is_reported_not_packaged() {
        let mut s = Segmenter::new(SegmenterConfig::default());
        s.set_tracks(&Tracks {
            video: Some(CodecConfig::Hevc { record: Bytes::from_static(&[1, 2]) }),
            audio: None,
            encoder: None,
        });
        let events: Vec<SegmenterEvent> = s.drain().collect();
        assert!(matches!(events[0], SegmenterEvent::Unsupported { kind: TrackKind::Video, .. }));
        s.push(&video(0, 0, true), SystemTime::now());
        s.finish();
        assert!(s.drain().all(|e| !matches!(e, SegmenterEvent::Part(_))));
    }
}
