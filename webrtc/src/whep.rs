//! WHEP egress, sans-IO: Bus frames become RTP packets for one viewer. H.264 passes through
//! (AVCC → NAL units → webrtc-rs's `H264Payloader`: single NAL / FU-A, with the stream's SPS and
//! PPS sent as a STAP-A before every keyframe); H.265 likewise (hvcC's VPS/SPS/PPS before
//! keyframes, RFC 7798 single NAL / AP / FU); VP8, VP9 and AV1 frames go whole to their
//! payloaders (an AV1 keyframe without a sequence header gets av1C's); Opus frames are one
//! packet each. Both tracks
//! take their RTP time from the frame's pts (90 kHz / 48 kHz), so they share the source's
//! timeline, and the RTCP sender reports the peer connection sends map both to one clock.
//! A viewer starts on a fresh keyframe and, after a PLI/FIR, restarts at the next one.
//! Video comes from the source or from the WebRTC rendition (`live/<name>/webrtc`, same
//! timeline), audio from the source or the Opus feed: each batch says which Bus stream it is from.

use crate::sdp::SendCodec;
pub use crate::sdp::VideoOrigin;
use bytes::Bytes;
use rill_media::avc::{avcc_nalus, DecoderConfigRecord};
use rill_media::time::Timebase;
use rill_media::track::{AvcConfig, CodecConfig, Tracks};
use rill_media::Frame;
use rtc::rtp::codec::av1::Av1Payloader;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::codec::h265::HevcPayloader;
use rtc::rtp::codec::vp8::Vp8Payloader;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp::packetizer::Payloader;

/// RTP payload bytes per packet (1200 keeps SRTP + IP/UDP headers under common MTUs).
pub const RTP_PAYLOAD_MTU: usize = 1200;
/// A joining viewer skips a cached GOP whose keyframe is older than this behind the live edge
/// and waits for the next keyframe: a burst of old frames would set the browser's jitter
/// buffer (and so the latency) to the GOP's age.
pub const MAX_START_LAG_MS: i64 = 500;

/// One outgoing RTP stream's header state.
#[derive(Debug, Clone)]
struct RtpOut {
    payload_type: u8,
    ssrc: u32,
    seq: u16,
    ts_offset: u32,
    clock: Timebase,
}

impl RtpOut {
    fn new(payload_type: u8, ssrc: u32, clock: Timebase, random: u32) -> RtpOut {
        RtpOut { payload_type, ssrc, seq: random as u16, ts_offset: random.rotate_left(13), clock }
    }

    fn packet(&mut self, frame: &Frame, marker: bool, payload: Bytes) -> Packet {
        let ts = (frame.pts.rescale(self.clock).ticks() as u32).wrapping_add(self.ts_offset);
        self.seq = self.seq.wrapping_add(1);
        Packet {
            header: Header {
                version: 2,
                marker,
                payload_type: self.payload_type,
                sequence_number: self.seq,
                timestamp: ts,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload,
        }
    }
}

/// A viewer's video payloader.
#[derive(Debug)]
enum VideoPayloader {
    H264(H264Payloader),
    H265(HevcPayloader),
    Vp8(Vp8Payloader),
    Vp9(Vp9Payloader),
    Av1(Av1Payloader),
}

impl VideoPayloader {
    fn new(codec: SendCodec, random: u32) -> VideoPayloader {
        match codec {
            SendCodec::H264 => VideoPayloader::H264(H264Payloader::default()),
            SendCodec::H265 => VideoPayloader::H265(HevcPayloader),
            SendCodec::Vp8 => {
                let mut p = Vp8Payloader::default();
                p.enable_picture_id = true;
                VideoPayloader::Vp8(p)
            }
            SendCodec::Vp9 => VideoPayloader::Vp9(Vp9Payloader { picture_id: random as u16 & 0x7fff }),
            SendCodec::Av1 => VideoPayloader::Av1(Av1Payloader::default()),
        }
    }

    fn payload(&mut self, data: &Bytes, keyframe: bool) -> Vec<Bytes> {
        let r = match self {
            VideoPayloader::H264(p) => p.payload(RTP_PAYLOAD_MTU, data),
            VideoPayloader::H265(p) => p.payload(RTP_PAYLOAD_MTU, data),
            VideoPayloader::Vp8(p) => p.payload(RTP_PAYLOAD_MTU, data),
            VideoPayloader::Vp9(p) => Ok(p.payload(RTP_PAYLOAD_MTU, data, keyframe)),
            VideoPayloader::Av1(p) => p.payload(RTP_PAYLOAD_MTU, data),
        };
        r.unwrap_or_default()
    }

    /// NAL-unit codecs: whether a NAL unit is a parameter set.
    fn is_parameter_set(&self, nalu: &[u8]) -> bool {
        match self {
            VideoPayloader::H264(_) => matches!(nalu[0] & 0x1f, 7 | 8),
            _ => matches!((nalu[0] >> 1) & 0x3f, 32..=34),
        }
    }
}

/// VP9 (RFC 9628) in flexible mode, one spatial and temporal layer: a 15-bit picture ID on
/// every packet and, on inter frames, the P bit with one reference, the previous picture (the
/// frame the receiver must have to go on; the decoder tracks the real references). webrtc-rs's
/// payloader never sets P, and Chromium then takes every frame for a keyframe and shows only
/// the real ones.
#[derive(Debug)]
struct Vp9Payloader {
    picture_id: u16,
}

impl Vp9Payloader {
    fn payload(&mut self, mtu: usize, frame: &Bytes, keyframe: bool) -> Vec<Bytes> {
        let header_len = if keyframe { 3 } else { 4 };
        let chunk = mtu.saturating_sub(header_len).max(1);
        let n = frame.len().div_ceil(chunk);
        let mut out = Vec::with_capacity(n);
        for (i, piece) in frame.chunks(chunk).enumerate() {
            let mut p = bytes::BytesMut::with_capacity(header_len + piece.len());
            // I=1 F=1, P on inter frames, B on the first packet, E on the last.
            let mut first = 0x80 | 0x10;
            if !keyframe {
                first |= 0x40;
            }
            if i == 0 {
                first |= 0x08;
            }
            if i + 1 == n {
                first |= 0x04;
            }
            p.extend_from_slice(&[first, 0x80 | (self.picture_id >> 8) as u8, self.picture_id as u8]);
            if !keyframe {
                p.extend_from_slice(&[1 << 1]); // P_DIFF 1, N=0
            }
            p.extend_from_slice(piece);
            out.push(p.freeze());
        }
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        out
    }
}

/// Which media a packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    Video,
    Audio,
}

/// Where a viewer's audio comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioSource {
    /// The stream's own audio track is Opus.
    Source,
    /// The derived Opus feed (`live/<name>/opus`), on the same timeline.
    OpusFeed,
    None,
}

/// Which Bus stream a batch of frames (or tracks) comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The source, `live/<name>`.
    Source,
    /// The WebRTC rendition, `live/<name>/webrtc`.
    Rendition,
    /// The Opus feed, `live/<name>/opus`.
    OpusFeed,
}

/// Counters of one viewer.
#[derive(Debug, Default, Clone, Copy)]
pub struct EgressCounters {
    pub frames_sent: u64,
    pub packets_sent: u64,
    /// Video frames skipped waiting for a keyframe (start or PLI).
    pub frames_skipped: u64,
}

/// One viewer's packetizers.
#[derive(Debug)]
pub struct Egress {
    video: Option<(RtpOut, VideoPayloader)>,
    audio: Option<RtpOut>,
    audio_source: AudioSource,
    video_origin: VideoOrigin,
    /// H.264/H.265: the parameter sets sent before keyframes that lack them; AV1: av1C's
    /// configOBUs (the sequence header).
    params: Vec<Bytes>,
    length_size: u8,
    waiting_keyframe: bool,
    started: bool,
    /// A keyframe is needed soon (stale start): the source may be asked for one.
    keyframe_wanted: bool,
    pub counters: EgressCounters,
}

impl Egress {
    /// `video`/`audio`: (payload type, SSRC) negotiated for each track, if any, and the video's codec.
    pub fn new(
        video: Option<(u8, u32, SendCodec)>,
        audio: Option<(u8, u32)>,
        audio_source: AudioSource,
        video_origin: VideoOrigin,
        random: u32,
    ) -> Egress {
        Egress {
            video: video.map(|(pt, ssrc, codec)| {
                (RtpOut::new(pt, ssrc, Timebase::MPEG, random), VideoPayloader::new(codec, random))
            }),
            audio: audio.map(|(pt, ssrc)| RtpOut::new(pt, ssrc, Timebase::OPUS, random.wrapping_mul(0x9e37_79b9))),
            audio_source,
            video_origin,
            params: Vec::new(),
            length_size: 4,
            waiting_keyframe: true,
            started: false,
            keyframe_wanted: false,
            counters: EgressCounters::default(),
        }
    }

    fn is_video_origin(&self, origin: Origin) -> bool {
        matches!(
            (self.video_origin, origin),
            (VideoOrigin::Source, Origin::Source) | (VideoOrigin::Rendition, Origin::Rendition)
        )
    }

    /// Tracks of the stream `origin` (first, and whenever they change): takes the parameter
    /// sets of the stream the video comes from.
    pub fn set_tracks(&mut self, tracks: &Tracks, origin: Origin) {
        if !self.is_video_origin(origin) {
            return;
        }
        match &tracks.video {
            Some(CodecConfig::Avc(avc)) => self.set_avc(avc),
            Some(CodecConfig::Hevc { record }) => {
                if let Ok((length_size, nalus)) = rill_media::hevc::record_nalus(record) {
                    self.length_size = length_size;
                    self.params = nalus.into_iter().map(|n| record.slice_ref(n)).collect();
                }
            }
            Some(CodecConfig::Av1 { record }) if record.len() > 4 => self.params = vec![record.slice(4..)],
            _ => {}
        }
    }

    fn set_avc(&mut self, avc: &AvcConfig) {
        if let Ok(record) = DecoderConfigRecord::parse(&avc.record) {
            self.length_size = record.nalu_length_size;
            self.params = record.sps.into_iter().chain(record.pps).collect();
        }
    }

    /// A PLI or FIR from the viewer: resume video at the next keyframe.
    pub fn keyframe_requested(&mut self) {
        self.waiting_keyframe = true;
    }

    /// True once after the viewer started waiting for a keyframe that the source should send
    /// soon (a WHIP publisher is asked with a PLI; encoders send them rarely otherwise).
    pub fn take_keyframe_wanted(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_wanted)
    }

    /// True while video waits for a keyframe.
    pub fn waiting_keyframe(&self) -> bool {
        self.video.is_some() && self.waiting_keyframe
    }

    /// Packets for a batch of frames from the Bus stream `origin`.
    pub fn frames(&mut self, frames: &[Frame], origin: Origin) -> Vec<(Media, Packet)> {
        let mut out = Vec::new();
        let video_origin = self.is_video_origin(origin);
        if video_origin && !self.started {
            self.started = true;
            // A stale cached GOP: wait for the next keyframe instead of bursting it.
            let first_key = frames.iter().find(|f| f.is_video() && f.keyframe).map(|f| f.dts);
            let last = frames.iter().rev().find(|f| f.is_video()).map(|f| f.dts);
            if let (Some(k), Some(l)) = (first_key, last) {
                if (l - k).as_millis() > MAX_START_LAG_MS {
                    self.keyframe_wanted = true;
                    let n = frames.iter().filter(|f| f.is_video()).count() as u64;
                    self.counters.frames_skipped += n;
                    return out;
                }
            }
        }
        for frame in frames {
            if frame.is_video() {
                if video_origin {
                    self.video_frame(frame, &mut out);
                }
            } else {
                let wanted = match self.audio_source {
                    AudioSource::Source => origin == Origin::Source,
                    AudioSource::OpusFeed => origin == Origin::OpusFeed,
                    AudioSource::None => false,
                };
                // Before the first picture, audio would play alone; keep the start aligned.
                if wanted && (self.started_video() || !self.waiting_keyframe()) {
                    if let Some(audio) = &mut self.audio {
                        let p = audio.packet(frame, true, frame.payload.clone());
                        out.push((Media::Audio, p));
                        self.counters.frames_sent += 1;
                    }
                }
            }
        }
        self.counters.packets_sent += out.len() as u64;
        out
    }

    fn started_video(&self) -> bool {
        self.counters.frames_sent > 0
    }

    fn video_frame(&mut self, frame: &Frame, out: &mut Vec<(Media, Packet)>) {
        let Some((rtp, payloader)) = &mut self.video else { return };
        if self.waiting_keyframe {
            if !frame.keyframe {
                self.counters.frames_skipped += 1;
                return;
            }
            self.waiting_keyframe = false;
        }
        let payloads = match payloader {
            VideoPayloader::H264(_) | VideoPayloader::H265(_) => {
                let mut nalus: Vec<Bytes> = Vec::new();
                let mut has_params = false;
                for nalu in avcc_nalus(&frame.payload, self.length_size) {
                    let Ok(nalu) = nalu else { break };
                    if nalu.is_empty() {
                        continue;
                    }
                    has_params |= payloader.is_parameter_set(nalu);
                    nalus.push(frame.payload.slice_ref(nalu));
                }
                if frame.keyframe && !has_params {
                    nalus.splice(0..0, self.params.iter().cloned());
                }
                // One NAL unit per call: the H.264 payloader holds SPS/PPS back and sends them
                // as a STAP-A in front of the next NAL unit.
                nalus.iter().flat_map(|nalu| payloader.payload(nalu, frame.keyframe)).collect()
            }
            VideoPayloader::Av1(_) if frame.keyframe && !has_sequence_header(&frame.payload) => {
                let mut tu = bytes::BytesMut::new();
                self.params.iter().for_each(|p| tu.extend_from_slice(p));
                tu.extend_from_slice(&frame.payload);
                payloader.payload(&tu.freeze(), true)
            }
            _ => payloader.payload(&frame.payload, frame.keyframe),
        };
        let n = payloads.len();
        for (i, payload) in payloads.into_iter().enumerate() {
            out.push((Media::Video, rtp.packet(frame, i + 1 == n, payload)));
        }
        self.counters.frames_sent += 1;
    }
}

/// Whether an AV1 temporal unit (OBUs with size fields) carries a sequence header.
fn has_sequence_header(mut tu: &[u8]) -> bool {
    use rill_media::av1::{obu_type, Obu};
    while let Ok(obu) = Obu::parse(tu) {
        if obu.obu_type == obu_type::SEQUENCE_HEADER {
            return true;
        }
        tu = &tu[obu.len.min(tu.len())..];
        if obu.len == 0 {
            break;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use rill_media::time::MediaTime;
    use rill_media::TrackId;

    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
        0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn tracks() -> Tracks {
        let record = DecoderConfigRecord::build(SPS, PPS).unwrap();
        Tracks {
            video: Some(CodecConfig::Avc(AvcConfig::from_record(record).unwrap())),
            audio: Some(CodecConfig::Opus { channels: 2, sample_rate: 48_000 }),
            encoder: None,
        }
    }

    fn video(ms: i64, key: bool, nal: &[u8]) -> Frame {
        let mut payload = (nal.len() as u32).to_be_bytes().to_vec();
        payload.extend_from_slice(nal);
        let t = MediaTime::from_millis(ms).rescale(Timebase::MPEG);
        Frame { track: TrackId::VIDEO, pts: t, dts: t, keyframe: key, payload: payload.into() }
    }

    fn audio(ms: i64) -> Frame {
        let t = MediaTime::new(ms * 48, Timebase::new(48_000).unwrap());
        Frame { track: TrackId::AUDIO, pts: t, dts: t, keyframe: true, payload: Bytes::from_static(&[0xfc, 1, 2]) }
    }

    #[test]
    fn keyframe_gets_stap_a_then_fu_a_with_marker_on_the_last() {
        let mut e =
            Egress::new(Some((102, 1, SendCodec::H264)), Some((111, 2)), AudioSource::Source, VideoOrigin::Source, 7);
        e.set_tracks(&tracks(), Origin::Source);
        let idr: Vec<u8> = std::iter::once(0x65).chain(std::iter::repeat_n(0xaa, 3000)).collect();
        let packets = e.frames(&[video(0, true, &idr), audio(0)], Origin::Source);
        let v: Vec<&Packet> = packets.iter().filter(|(m, _)| *m == Media::Video).map(|(_, p)| p).collect();
        assert_eq!(v[0].payload[0] & 0x1f, 24, "STAP-A first");
        assert!(v[1..].iter().all(|p| p.payload[0] & 0x1f == 28), "then FU-A");
        assert_eq!(v.iter().filter(|p| p.header.marker).count(), 1);
        assert!(v.last().unwrap().header.marker);
        assert!(v.windows(2).all(|w| w[1].header.sequence_number == w[0].header.sequence_number.wrapping_add(1)));
        assert_eq!(packets.iter().filter(|(m, _)| *m == Media::Audio).count(), 1);
        // The depacketizer of the ingest side reads it back.
        let mut d = crate::whip::H264Depacketizer::default();
        let mut au = None;
        for p in &v {
            au = d.push(p.header.sequence_number, p.header.timestamp, p.header.marker, &p.payload).or(au);
        }
        let au = au.unwrap();
        assert_eq!(au.nalus, vec![Bytes::from_static(SPS), Bytes::from_static(PPS), Bytes::from(idr)]);
    }

    #[test]
    fn rtp_time_follows_pts_on_both_tracks() {
        let mut e =
            Egress::new(Some((102, 1, SendCodec::H264)), Some((111, 2)), AudioSource::Source, VideoOrigin::Source, 0);
        e.set_tracks(&tracks(), Origin::Source);
        let a = e.frames(&[video(1000, true, &[0x65, 1]), audio(1000)], Origin::Source);
        let b = e.frames(&[video(1040, false, &[0x41, 1]), audio(1040)], Origin::Source);
        let ts = |v: &Vec<(Media, Packet)>, m| v.iter().find(|(k, _)| *k == m).unwrap().1.header.timestamp;
        assert_eq!(ts(&b, Media::Video).wrapping_sub(ts(&a, Media::Video)), 3600);
        assert_eq!(ts(&b, Media::Audio).wrapping_sub(ts(&a, Media::Audio)), 1920);
    }

    #[test]
    fn pli_and_stale_gop_wait_for_a_keyframe() {
        let mut e = Egress::new(Some((102, 1, SendCodec::H264)), None, AudioSource::None, VideoOrigin::Source, 0);
        e.set_tracks(&tracks(), Origin::Source);
        // A cached GOP two seconds old is skipped.
        let stale: Vec<Frame> =
            (0..60).map(|i| video(i * 33, i == 0, &[if i == 0 { 0x65 } else { 0x41 }, 1])).collect();
        assert!(e.frames(&stale, Origin::Source).is_empty());
        assert!(e.frames(&[video(2000, false, &[0x41, 1])], Origin::Source).is_empty());
        assert!(!e.frames(&[video(2033, true, &[0x65, 1])], Origin::Source).is_empty());
        assert!(!e.frames(&[video(2066, false, &[0x41, 1])], Origin::Source).is_empty());
        e.keyframe_requested();
        assert!(e.frames(&[video(2100, false, &[0x41, 1])], Origin::Source).is_empty());
        assert!(!e.frames(&[video(2133, true, &[0x65, 1])], Origin::Source).is_empty());
    }

    #[test]
    fn opus_feed_audio_only_from_the_feed() {
        let mut e =
            Egress::new(Some((102, 1, SendCodec::H264)), Some((111, 2)), AudioSource::OpusFeed, VideoOrigin::Source, 0);
        e.set_tracks(&tracks(), Origin::Source);
        let aac = Frame { track: TrackId::AUDIO, ..audio(0) };
        let from_source = e.frames(&[video(0, true, &[0x65, 1]), aac], Origin::Source);
        assert!(from_source.iter().all(|(m, _)| *m == Media::Video));
        let from_feed = e.frames(&[audio(20)], Origin::OpusFeed);
        assert_eq!(from_feed.len(), 1);
    }

    #[test]
    fn rendition_viewer_takes_video_only_from_the_rendition() {
        let mut e = Egress::new(
            Some((102, 1, SendCodec::H264)),
            Some((111, 2)),
            AudioSource::OpusFeed,
            VideoOrigin::Rendition,
            0,
        );
        // The source's parameter sets are not the rendition's: only the rendition's are taken.
        e.set_tracks(&tracks(), Origin::Source);
        assert!(e.params.is_empty());
        e.set_tracks(&tracks(), Origin::Rendition);
        assert_eq!(e.params.len(), 2);
        let aac = Frame { track: TrackId::AUDIO, ..audio(0) };
        assert!(e.frames(&[video(0, true, &[0x65, 1]), aac], Origin::Source).is_empty());
        let v = e.frames(&[video(0, true, &[0x65, 1])], Origin::Rendition);
        assert!(!v.is_empty() && v.iter().all(|(m, _)| *m == Media::Video));
        assert_eq!(e.frames(&[audio(20)], Origin::OpusFeed).len(), 1);
    }

    #[test]
    fn vp9_inter_frames_say_so() {
        let mut p = Vp9Payloader { picture_id: 0x7fff };
        let key = p.payload(1200, &Bytes::from(vec![0x82; 2500]), true);
        assert_eq!(key.len(), 3);
        assert_eq!(key[0][0], 0x98, "I F B");
        assert_eq!(key[2][0], 0x94, "I F E");
        assert_eq!(&key[0][1..3], &[0xff, 0xff]);
        let inter = p.payload(1200, &Bytes::from_static(&[0x86, 1, 2]), false);
        assert_eq!(inter.len(), 1);
        assert_eq!(&inter[0][..], &[0xdc, 0x80, 0x00, 0x02, 0x86, 1, 2], "I P F B E, picture 0 after 0x7fff, P_DIFF 1");
    }
}
