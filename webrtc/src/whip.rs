//! WHIP ingest, sans-IO: RTP packets from a publishing browser or encoder become `Frame`s
//! for the Bus. H.264 (RFC 6184: single NAL, STAP-A, FU-A; our own bounded depacketizer, see
//! [`H264Depacketizer`]) is reassembled into AVCC access units with its parameter sets moved
//! into the AVC record; VP8, VP9 and AV1 go through [`crate::depacketize`] (their keyframes
//! carry the track configuration); Opus packets are frames as they are (webrtc-rs's `OpusPacket`).
//! Timestamps: each track's 32-bit RTP time is unwrapped here (the one place for ingest, with
//! [`Unwrapper32`]) and placed on one timeline by
//! its first packet's arrival, so audio and video start aligned.

use crate::depacketize::{Sequence, SequenceTracker, VideoCodec, VideoDepacketizer};
use bytes::{BufMut, Bytes, BytesMut};
use rill_media::avc::DecoderConfigRecord;
use rill_media::time::{MediaTime, Timebase, Unwrapper32};
use rill_media::track::{AvcConfig, CodecConfig, Tracks};
use rill_media::{Frame, TrackId};
use rtc::rtp::codec::opus::OpusPacket;
use rtc::rtp::packetizer::Depacketizer;
use std::time::{Duration, Instant};

/// Largest access unit we assemble (a 4K IDR is well under this).
pub const MAX_ACCESS_UNIT: usize = 8 << 20;
/// Most NAL units in one access unit.
pub const MAX_NALUS: usize = 1024;

/// One reassembled H.264 access unit: NAL units without start codes or lengths.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessUnit {
    pub rtp_time: u32,
    pub nalus: Vec<Bytes>,
}

impl AccessUnit {
    pub fn is_idr(&self) -> bool {
        self.nalus.iter().any(|n| n.first().is_some_and(|h| h & 0x1f == 5))
    }
}

/// RFC 6184 depacketizer (packetization-mode 1) with bounds. Not webrtc-rs's `H264Packet`:
/// in rtc-rtp 0.21.1 its STAP-A loop reads `packet[offset + 1]` without a bounds check (a
/// STAP-A ending one byte after a NAL panics) and its FU-A buffer has no size bound or loss
/// handling. A gap in sequence numbers drops the access unit in progress.
#[derive(Debug, Default)]
pub struct H264Depacketizer {
    nalus: Vec<Bytes>,
    size: usize,
    fu: Option<BytesMut>,
    rtp_time: Option<u32>,
    sequence: SequenceTracker,
    /// The access unit in progress lost a packet.
    broken: bool,
    /// Access units dropped (loss, overflow, malformed).
    pub dropped: u64,
}

impl H264Depacketizer {
    /// Feeds one packet; returns the access unit it completes (marker bit, or the next
    /// timestamp starting).
    pub fn push(&mut self, seq: u16, rtp_time: u32, marker: bool, payload: &[u8]) -> Option<AccessUnit> {
        let mut done = None;
        match self.sequence.check(seq) {
            Sequence::Stale => return None, // late or duplicate
            Sequence::Gap => {
                self.broken = true;
                self.fu = None;
            }
            Sequence::Next => {}
        }
        if self.rtp_time.is_some_and(|t| t != rtp_time) {
            done = self.finish();
        }
        self.rtp_time = Some(rtp_time);
        if self.parse(payload).is_err() {
            self.broken = true;
            self.fu = None;
        }
        if marker {
            done = self.finish().or(done);
        }
        done
    }

    fn add(&mut self, nalu: Bytes) -> Result<(), ()> {
        if nalu.is_empty() || self.nalus.len() >= MAX_NALUS || self.size + nalu.len() > MAX_ACCESS_UNIT {
            return Err(());
        }
        self.size += nalu.len();
        self.nalus.push(nalu);
        Ok(())
    }

    fn parse(&mut self, p: &[u8]) -> Result<(), ()> {
        let header = *p.first().ok_or(())?;
        match header & 0x1f {
            1..=23 => self.add(Bytes::copy_from_slice(p)),
            24 => {
                let mut rest = &p[1..];
                while !rest.is_empty() {
                    let [hi, lo, ..] = rest[..] else { return Err(()) };
                    let len = u16::from_be_bytes([hi, lo]) as usize;
                    let nalu = rest.get(2..2 + len).ok_or(())?;
                    self.add(Bytes::copy_from_slice(nalu))?;
                    rest = &rest[2 + len..];
                }
                Ok(())
            }
            28 => {
                let fu_header = *p.get(1).ok_or(())?;
                let (start, end) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
                if start {
                    let mut buf = BytesMut::with_capacity(p.len() * 4);
                    buf.put_u8((header & 0xe0) | (fu_header & 0x1f));
                    self.fu = Some(buf);
                }
                let fu = self.fu.as_mut().ok_or(())?;
                if self.size + fu.len() + p.len() > MAX_ACCESS_UNIT {
                    return Err(());
                }
                fu.extend_from_slice(&p[2..]);
                if end {
                    let nalu = self.fu.take().ok_or(())?.freeze();
                    self.add(nalu)?;
                }
                Ok(())
            }
            _ => Err(()), // STAP-B, MTAP, FU-B: not in packetization-mode 1
        }
    }

    fn finish(&mut self) -> Option<AccessUnit> {
        let nalus = std::mem::take(&mut self.nalus);
        let rtp_time = self.rtp_time.take()?;
        self.size = 0;
        self.fu = None;
        let broken = std::mem::replace(&mut self.broken, false);
        if broken {
            self.dropped += 1;
            return None;
        }
        if nalus.is_empty() {
            return None;
        }
        Some(AccessUnit { rtp_time, nalus })
    }
}

/// What the ingest asks its session to do.
#[derive(Debug)]
pub enum IngestAction {
    /// The publisher's tracks are known or changed: announce them.
    SetTracks(Tracks),
    Frame(Frame),
    /// Ask the publisher for a keyframe (no decodable picture yet, or loss).
    RequestKeyframe,
}

/// One publisher's media: which tracks it negotiated, their depacketizers and timelines.
#[derive(Debug)]
pub struct Ingest {
    has_video: bool,
    has_audio: bool,
    started: Instant,
    video: H264Depacketizer,
    /// VP8/VP9/AV1 video (H.264 uses `video`).
    other_video: Option<VideoDepacketizer>,
    /// The VP8/VP9/AV1 configuration from the last keyframe or sequence header.
    other_config: Option<CodecConfig>,
    video_time: Unwrapper32,
    video_origin: Option<(i64, Duration)>,
    audio_time: Unwrapper32,
    audio_origin: Option<(i64, Duration)>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    avc: Option<AvcConfig>,
    announced: Option<Tracks>,
    waiting_keyframe: bool,
    last_dts: Option<MediaTime>,
    /// Frames dropped before the first decodable picture.
    pub dropped_before_keyframe: u64,
}

impl Ingest {
    /// An ingest of H.264 video (when `has_video`) and Opus audio.
    pub fn new(has_video: bool, has_audio: bool, now: Instant) -> Ingest {
        Self::with_video_codec(has_video, None, has_audio, now)
    }

    /// An ingest whose video (when `has_video`) is `codec`, or H.264 when `None`.
    pub fn with_video_codec(has_video: bool, codec: Option<VideoCodec>, has_audio: bool, now: Instant) -> Ingest {
        Ingest {
            has_video,
            has_audio,
            started: now,
            video: H264Depacketizer::default(),
            other_video: codec.map(VideoDepacketizer::new),
            other_config: None,
            video_time: Unwrapper32::default(),
            video_origin: None,
            audio_time: Unwrapper32::default(),
            audio_origin: None,
            sps: None,
            pps: None,
            avc: None,
            announced: None,
            waiting_keyframe: true,
            last_dts: None,
            dropped_before_keyframe: 0,
        }
    }

    /// Access units (frames) the video depacketizer dropped.
    pub fn video_dropped(&self) -> u64 {
        match &self.other_video {
            Some(d) => d.dropped,
            None => self.video.dropped,
        }
    }

    fn media_time(origin: &mut Option<(i64, Duration)>, now: Duration, ext: i64, tb: Timebase) -> MediaTime {
        let (first, at) = *origin.get_or_insert((ext, now));
        MediaTime::new(ext - first, tb) + MediaTime::from_millis(at.as_millis() as i64)
    }

    /// One video RTP packet (of the negotiated codec).
    pub fn push_video(
        &mut self,
        now: Instant,
        seq: u16,
        rtp_time: u32,
        marker: bool,
        payload: &[u8],
    ) -> Vec<IngestAction> {
        if self.other_video.is_some() {
            return self.push_other_video(now, seq, rtp_time, marker, payload);
        }
        let mut out = Vec::new();
        let dropped_before = self.video.dropped;
        let au = self.video.push(seq, rtp_time, marker, payload);
        if self.video.dropped != dropped_before {
            self.waiting_keyframe = true;
            out.push(IngestAction::RequestKeyframe);
        }
        let Some(au) = au else { return out };
        let ext = self.video_time.unwrap(au.rtp_time.into());
        let pts = Self::media_time(&mut self.video_origin, now - self.started, ext, Timebase::MPEG);
        let mut body = BytesMut::new();
        let mut idr = false;
        for nalu in &au.nalus {
            match nalu[0] & 0x1f {
                7 => self.sps = Some(nalu.clone()),
                8 => self.pps = Some(nalu.clone()),
                9 | 12 => {}
                t => {
                    idr |= t == 5;
                    body.put_u32(nalu.len() as u32);
                    body.extend_from_slice(nalu);
                }
            }
        }
        if let (Some(sps), Some(pps)) = (&self.sps, &self.pps) {
            let same = self.avc.as_ref().is_some_and(|c| {
                DecoderConfigRecord::parse(&c.record)
                    .is_ok_and(|r| r.sps.first() == Some(sps) && r.pps.first() == Some(pps))
            });
            if !same {
                if let Ok(avc) = DecoderConfigRecord::build(sps, pps).and_then(AvcConfig::from_record) {
                    self.avc = Some(avc);
                }
            }
        }
        self.announce_tracks(&mut out);
        if !body.is_empty() {
            self.emit_video(&mut out, pts, idr, body.freeze());
        }
        out
    }

    /// Announces the tracks when they changed.
    fn announce_tracks(&mut self, out: &mut Vec<IngestAction>) {
        if let Some(tracks) = self.tracks() {
            if self.announced.as_ref() != Some(&tracks) {
                self.announced = Some(tracks.clone());
                out.push(IngestAction::SetTracks(tracks));
            }
        }
    }

    /// A complete video frame onto the Bus, unless the tracks are not known yet or a keyframe
    /// is awaited after a loss (then a keyframe is asked for, once per packet batch).
    fn emit_video(&mut self, out: &mut Vec<IngestAction>, pts: MediaTime, keyframe: bool, payload: Bytes) {
        if self.announced.is_none() || self.waiting_keyframe && !keyframe {
            self.dropped_before_keyframe += 1;
            if self.waiting_keyframe && !out.iter().any(|a| matches!(a, IngestAction::RequestKeyframe)) {
                out.push(IngestAction::RequestKeyframe);
            }
            return;
        }
        self.waiting_keyframe = false;
        let dts = self.monotonic(pts);
        out.push(IngestAction::Frame(Frame { track: TrackId::VIDEO, pts: dts, dts, keyframe, payload }));
    }

    /// One VP8, VP9 or AV1 RTP packet.
    fn push_other_video(
        &mut self,
        now: Instant,
        seq: u16,
        rtp_time: u32,
        marker: bool,
        payload: &[u8],
    ) -> Vec<IngestAction> {
        let mut out = Vec::new();
        let Some(depacketizer) = self.other_video.as_mut() else { return out };
        let dropped_before = depacketizer.dropped;
        let frame = depacketizer.push(seq, rtp_time, marker, payload);
        if depacketizer.dropped != dropped_before {
            self.waiting_keyframe = true;
            out.push(IngestAction::RequestKeyframe);
        }
        let Some(frame) = frame else { return out };
        let ext = self.video_time.unwrap(frame.rtp_time.into());
        let pts = Self::media_time(&mut self.video_origin, now - self.started, ext, Timebase::MPEG);
        if let Some(config) = frame.config {
            self.other_config = Some(config);
        }
        self.announce_tracks(&mut out);
        self.emit_video(&mut out, pts, frame.keyframe, frame.data);
        out
    }

    /// One Opus RTP packet (one Opus frame per packet, RFC 7587).
    pub fn push_audio(&mut self, now: Instant, rtp_time: u32, payload: &[u8]) -> Vec<IngestAction> {
        let mut out = Vec::new();
        if self.announced.is_none() {
            if let Some(tracks) = self.tracks() {
                self.announced = Some(tracks.clone());
                out.push(IngestAction::SetTracks(tracks));
            }
        }
        let ext = self.audio_time.unwrap(rtp_time.into());
        let pts = Self::media_time(&mut self.audio_origin, now - self.started, ext, Timebase::OPUS);
        // Audio waits for the first picture when there is video, so the stream starts on a keyframe.
        if self.announced.is_none() || self.has_video && self.waiting_keyframe {
            return out;
        }
        let payload = match OpusPacket.depacketize(&Bytes::copy_from_slice(payload)) {
            Ok(p) if !p.is_empty() => p,
            _ => return out,
        };
        out.push(IngestAction::Frame(Frame { track: TrackId::AUDIO, pts, dts: pts, keyframe: true, payload }));
        out
    }

    /// Video timestamps never go backwards on the Bus (WebRTC encoders send no B-frames).
    fn monotonic(&mut self, t: MediaTime) -> MediaTime {
        let t = match self.last_dts {
            Some(last) if t.ticks() <= last.ticks() => MediaTime::new(last.ticks() + 1, Timebase::MPEG),
            _ => t,
        };
        self.last_dts = Some(t);
        t
    }

    /// The tracks once every negotiated track can be described.
    fn tracks(&self) -> Option<Tracks> {
        let video = match (self.has_video, &self.avc, &self.other_video) {
            (false, _, _) => None,
            (true, _, Some(_)) => Some(self.other_config.clone()?),
            (true, Some(avc), None) => Some(CodecConfig::Avc(avc.clone())),
            (true, None, None) => return None,
        };
        let audio = self.has_audio.then_some(CodecConfig::Opus { channels: 2, sample_rate: 48_000 });
        Some(Tracks { video, audio, encoder: Some("WebRTC (WHIP)".into()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real SPS/PPS pair (x264, 320x240 Constrained Baseline).
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
        0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn stap_a(nalus: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![24];
        for n in nalus {
            p.extend_from_slice(&(n.len() as u16).to_be_bytes());
            p.extend_from_slice(n);
        }
        p
    }

    #[test]
    fn reassembles_stap_a_and_fu_a() {
        let mut d = H264Depacketizer::default();
        assert_eq!(d.push(1, 900, false, &stap_a(&[SPS, PPS])), None);
        let idr: Vec<u8> = std::iter::once(0x65).chain((0..3000).map(|i| i as u8)).collect();
        let mut au = None;
        let chunks: Vec<&[u8]> = idr[1..].chunks(1000).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut p = vec![0x7c, 0x05 | if i == 0 { 0x80 } else { 0 } | if i == chunks.len() - 1 { 0x40 } else { 0 }];
            p.extend_from_slice(chunk);
            au = d.push(2 + i as u16, 900, i == chunks.len() - 1, &p);
        }
        let au = au.expect("marker completes the access unit");
        assert_eq!(au.nalus.len(), 3);
        assert_eq!(&au.nalus[2][..], &idr[..]);
        assert!(au.is_idr());
    }

    #[test]
    fn loss_drops_the_access_unit_and_bad_packets_do_not_panic() {
        let mut d = H264Depacketizer::default();
        d.push(1, 10, false, &[0x7c, 0x85, 1, 2, 3]);
        assert_eq!(d.push(3, 10, true, &[0x7c, 0x45, 4, 5, 6]), None, "seq 2 lost");
        assert_eq!(d.dropped, 1);
        let bad: [&[u8]; 8] =
            [&[24u8][..], &[24, 0], &[24, 0, 5, 1], &[24, 0, 1, 0x41, 0], &[28], &[28, 0x40, 1], &[30, 1, 2], &[]];
        for (i, bad) in bad.iter().enumerate() {
            assert_eq!(d.push(10 + i as u16, 20, true, bad), None);
        }
        let ok = d.push(18, 30, true, &[0x41, 1, 2]).unwrap();
        assert_eq!(ok.nalus, vec![Bytes::from_static(&[0x41, 1, 2])]);
    }

    #[test]
    fn ingest_announces_tracks_then_frames_from_the_first_idr() {
        let t0 = Instant::now();
        let mut ingest = Ingest::new(true, true, t0);
        // Audio and a P-frame before the first IDR are dropped, with a keyframe request.
        assert!(ingest.push_audio(t0, 1000, &[0xfc, 1, 2]).is_empty());
        let actions = ingest.push_video(t0, 1, 3000, true, &[0x41, 9, 9]);
        assert!(matches!(actions[..], [IngestAction::RequestKeyframe]), "{actions:?}");
        let _ = ingest.push_video(t0, 2, 6000, false, &stap_a(&[SPS, PPS]));
        let actions = ingest.push_video(t0 + Duration::from_millis(33), 3, 6000, true, &[0x65, 1, 2, 3]);
        let Some(IngestAction::SetTracks(tracks)) = actions.first() else { panic!("{actions:?}") };
        assert!(matches!(tracks.video, Some(CodecConfig::Avc(_))));
        assert!(matches!(tracks.audio, Some(CodecConfig::Opus { .. })));
        let Some(IngestAction::Frame(f)) = actions.get(1) else { panic!("{actions:?}") };
        assert!(f.keyframe && f.is_video());
        assert_eq!(&f.payload[..], &[0, 0, 0, 4, 0x65, 1, 2, 3]);
        let later = ingest.push_video(t0 + Duration::from_millis(66), 4, 9000, true, &[0x41, 7]);
        let Some(IngestAction::Frame(p)) = later.first() else { panic!("{later:?}") };
        assert_eq!((p.pts - f.pts).as_millis(), 33, "RTP time drives pts");
        let audio = ingest.push_audio(t0 + Duration::from_millis(70), 1960, &[0xfc, 1, 2]);
        assert!(matches!(audio.first(), Some(IngestAction::Frame(a)) if !a.is_video()));
    }

    #[test]
    fn vp8_ingest_announces_vp8_and_starts_on_a_keyframe() {
        let t0 = Instant::now();
        let mut ingest = Ingest::with_video_codec(true, Some(VideoCodec::Vp8), true, t0);
        // An inter frame first: dropped, keyframe requested.
        let actions = ingest.push_video(t0, 1, 3000, true, &[0x10, 0x51, 0x02, 0x00]);
        assert!(matches!(actions[..], [IngestAction::RequestKeyframe]), "{actions:?}");
        let key = [0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0x11];
        let actions = ingest.push_video(t0 + Duration::from_millis(33), 2, 6000, true, &key);
        let Some(IngestAction::SetTracks(tracks)) = actions.first() else { panic!("{actions:?}") };
        assert_eq!(tracks.video, Some(CodecConfig::Vp8 { width: 320, height: 240 }));
        assert_eq!(tracks.video.as_ref().unwrap().name(), "vp8");
        let Some(IngestAction::Frame(f)) = actions.get(1) else { panic!("{actions:?}") };
        assert!(f.keyframe && f.is_video());
        assert_eq!(&f.payload[..], &key[1..]);
        let later = ingest.push_video(t0 + Duration::from_millis(66), 3, 9000, true, &[0x10, 0x51, 7]);
        let Some(IngestAction::Frame(p)) = later.first() else { panic!("{later:?}") };
        assert!(!p.keyframe);
        assert_eq!((p.pts - f.pts).as_millis(), 33, "RTP time drives pts");
    }
}
