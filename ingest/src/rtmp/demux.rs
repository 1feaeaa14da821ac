//! Turns a publisher's RTMP audio/video message bodies (FLV tag bodies) into the Bus's
//! [`Tracks`] and [`Frame`]s. This is the one place RTMP's 32-bit timestamps are unwrapped
//! (with [`Unwrapper32`]).

use bytes::Bytes;
use rill_media::flv::{self, video_packet, AudioTag, AvcPacket, FlvError, VideoTag};
use rill_media::time::Unwrapper32;
use rill_media::vp9::KeyframeHeader;
use rill_media::{AacConfig, AvcConfig, CodecConfig, Frame, MediaTime, TrackId, Tracks};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum DemuxError {
    #[error(transparent)]
    Flv(#[from] FlvError),
    #[error("bad AVC sequence header: {0}")]
    AvcConfig(#[from] rill_media::avc::AvcError),
    #[error("bad AAC sequence header: {0}")]
    AacConfig(#[from] rill_media::aac::AacError),
    #[error("empty {0} sequence start")]
    EmptyRecord(String),
}

/// A FourCC as text for logs (non-printable bytes escaped).
fn fourcc_name(fourcc: [u8; 4]) -> String {
    fourcc.escape_ascii().to_string()
}

/// Something a publisher sent that Rill drops, reported once per kind so logs stay readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsupported {
    VideoCodec(String),
    AudioFormat(u8),
    FrameBeforeSequenceHeader(&'static str),
}

/// What [`MediaDemuxer`] produced from one message.
#[derive(Debug)]
pub enum Demuxed {
    Frame(Frame),
    /// Configuration only (sequence header, metadata): nothing to push yet.
    Config,
    Dropped(Unsupported),
}

/// Sans-IO FLV demuxer for one publishing session.
#[derive(Default)]
pub struct MediaDemuxer {
    tracks: Tracks,
    clock: Unwrapper32,
    reported: Vec<Unsupported>,
}

impl MediaDemuxer {
    pub fn tracks(&self) -> &Tracks {
        &self.tracks
    }

    pub fn set_encoder(&mut self, encoder: Option<String>) {
        self.tracks.encoder = encoder;
    }

    pub fn video(&mut self, timestamp: u32, body: &Bytes) -> Result<Demuxed, DemuxError> {
        let dts = self.clock.unwrap(timestamp.into());
        match flv::parse_video(body)? {
            VideoTag::Avc { packet: AvcPacket::SequenceHeader(record), .. } => {
                self.tracks.video = Some(CodecConfig::Avc(AvcConfig::from_record(record)?));
                Ok(Demuxed::Config)
            }
            VideoTag::Avc { keyframe, packet: AvcPacket::Nalus { composition_time_ms, data } } => {
                if !matches!(self.tracks.video, Some(CodecConfig::Avc(_))) {
                    return Ok(self.drop(Unsupported::FrameBeforeSequenceHeader("video")));
                }
                Ok(Demuxed::Frame(Frame {
                    track: TrackId::VIDEO,
                    pts: MediaTime::from_millis(dts + composition_time_ms as i64),
                    dts: MediaTime::from_millis(dts),
                    keyframe,
                    payload: data,
                }))
            }
            VideoTag::Avc { packet: AvcPacket::EndOfSequence, .. } | VideoTag::Command => Ok(Demuxed::Config),
            VideoTag::Enhanced { keyframe, fourcc, packet_type, body } => {
                self.enhanced(dts, keyframe, fourcc, packet_type, body)
            }
            VideoTag::Unsupported { codec_id } => {
                Ok(self.drop(Unsupported::VideoCodec(format!("FLV codec id {codec_id}"))))
            }
        }
    }

    /// An Enhanced RTMP video tag: `hvc1`, `av01` (and `avc1`) sequence starts and coded frames.
    fn enhanced(
        &mut self,
        dts: i64,
        keyframe: bool,
        fourcc: [u8; 4],
        packet_type: u8,
        body: Bytes,
    ) -> Result<Demuxed, DemuxError> {
        let codec_matches = |video: &Option<CodecConfig>| {
            matches!(
                (&fourcc, video),
                (b"hvc1", Some(CodecConfig::Hevc { .. }))
                    | (b"av01", Some(CodecConfig::Av1 { .. }))
                    | (b"vp09", Some(CodecConfig::Vp9 { .. }))
                    | (b"avc1", Some(CodecConfig::Avc(_)))
            )
        };
        match (&fourcc, packet_type) {
            (b"hvc1" | b"av01" | b"vp09" | b"avc1", video_packet::SEQUENCE_START) => {
                if body.is_empty() {
                    return Err(DemuxError::EmptyRecord(fourcc_name(fourcc)));
                }
                self.tracks.video = Some(match &fourcc {
                    b"hvc1" => CodecConfig::Hevc { record: body },
                    b"av01" => CodecConfig::Av1 { record: body },
                    b"vp09" => CodecConfig::Vp9 { record: body, size: None },
                    _ => CodecConfig::Avc(AvcConfig::from_record(body)?),
                });
                Ok(Demuxed::Config)
            }
            (b"hvc1" | b"av01" | b"vp09" | b"avc1", video_packet::CODED_FRAMES | video_packet::CODED_FRAMES_X) => {
                if !codec_matches(&self.tracks.video) {
                    return Ok(self.drop(Unsupported::FrameBeforeSequenceHeader("video")));
                }
                // Only hvc1/avc1 CodedFrames carry a composition time offset (SI24, ms).
                let with_offset = packet_type == video_packet::CODED_FRAMES && matches!(&fourcc, b"hvc1" | b"avc1");
                let (cts, payload) = if with_offset {
                    let [a, b, c, ..] = body[..] else {
                        return Err(FlvError::Truncated { kind: "enhanced coded frames", len: body.len() }.into());
                    };
                    (((u32::from_be_bytes([0, a, b, c]) << 8) as i32 >> 8) as i64, body.slice(3..))
                } else {
                    (0, body)
                };
                if let (true, Some(CodecConfig::Vp9 { size: size @ None, .. })) = (keyframe, &mut self.tracks.video) {
                    // vpcC has no picture size: the first key frame's header gives it, before the
                    // frame (and with it the tracks) reaches the Bus.
                    *size = KeyframeHeader::parse(&payload).map(|h| (h.width, h.height));
                }
                Ok(Demuxed::Frame(Frame {
                    track: TrackId::VIDEO,
                    pts: MediaTime::from_millis(dts + cts),
                    dts: MediaTime::from_millis(dts),
                    keyframe,
                    payload,
                }))
            }
            (b"hvc1" | b"av01" | b"vp09" | b"avc1", video_packet::SEQUENCE_END | video_packet::METADATA) => {
                Ok(Demuxed::Config)
            }
            (b"hvc1" | b"av01" | b"vp09" | b"avc1", other) => {
                Ok(self.drop(Unsupported::VideoCodec(format!("Enhanced RTMP packet type {other}"))))
            }
            _ => Ok(self.drop(Unsupported::VideoCodec(fourcc_name(fourcc)))),
        }
    }

    pub fn audio(&mut self, timestamp: u32, body: &Bytes) -> Result<Demuxed, DemuxError> {
        let dts = self.clock.unwrap(timestamp.into());
        match flv::parse_audio(body)? {
            AudioTag::AacSequenceHeader(asc) => {
                self.tracks.audio = Some(CodecConfig::Aac(AacConfig::from_asc(asc)?));
                Ok(Demuxed::Config)
            }
            AudioTag::AacRaw(data) => {
                if !matches!(self.tracks.audio, Some(CodecConfig::Aac(_))) {
                    return Ok(self.drop(Unsupported::FrameBeforeSequenceHeader("audio")));
                }
                let time = MediaTime::from_millis(dts);
                Ok(Demuxed::Frame(Frame { track: TrackId::AUDIO, pts: time, dts: time, keyframe: true, payload: data }))
            }
            AudioTag::Unsupported { sound_format } => Ok(self.drop(Unsupported::AudioFormat(sound_format))),
        }
    }

    /// Returns `Dropped` and remembers the kind; the caller logs only first occurrences
    /// (see [`Self::first_time`]).
    fn drop(&mut self, what: Unsupported) -> Demuxed {
        Demuxed::Dropped(what)
    }

    /// True the first time `what` is seen in this session (for at most 8 kinds: a hostile
    /// publisher cycling through made-up codecs gets neither memory nor log lines from it).
    pub fn first_time(&mut self, what: &Unsupported) -> bool {
        if self.reported.len() >= 8 || self.reported.contains(what) {
            return false;
        }
        self.reported.push(what.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_need_a_sequence_header_first() {
        let mut d = MediaDemuxer::default();
        let nalu = Bytes::from_static(&[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]);
        assert!(matches!(
            d.video(0, &nalu).unwrap(),
            Demuxed::Dropped(Unsupported::FrameBeforeSequenceHeader("video"))
        ));
        let asc = Bytes::from_static(&[0xaf, 0, 0x12, 0x10]);
        assert!(matches!(d.audio(0, &asc).unwrap(), Demuxed::Config));
        let raw = Bytes::from_static(&[0xaf, 1, 0x21]);
        match d.audio(23, &raw).unwrap() {
            Demuxed::Frame(f) => {
                assert_eq!(f.dts.as_millis(), 23);
                assert_eq!(f.payload.as_ptr(), raw[2..].as_ptr());
            }
            other => panic!("{other:?}"),
        }
    }

    /// An Enhanced RTMP video tag as the E-RTMP spec lays it out:
    /// `[IsExHeader=1 | FrameType:3 | PacketType:4] [FourCC:4] [body]`.
    fn ex_tag(keyframe: bool, packet_type: u8, fourcc: &[u8; 4], body: &[u8]) -> Bytes {
        let frame_type = if keyframe { 1 } else { 2 };
        [&[0x80 | frame_type << 4 | packet_type][..], fourcc, body].concat().into()
    }

    #[test]
    fn enhanced_rtmp_hevc_sequence_start_and_coded_frames() {
        let mut d = MediaDemuxer::default();
        let record = [1u8, 0x01, 0x60, 0, 0, 0]; // the head of an hvcC; passed through as is
        assert!(matches!(d.video(0, &ex_tag(true, 0, b"hvc1", &[])), Err(DemuxError::EmptyRecord(_))));
        let early = ex_tag(true, 1, b"hvc1", &[0, 0, 0, 0, 0, 0, 1, 0x26]);
        assert!(matches!(d.video(0, &early).unwrap(), Demuxed::Dropped(Unsupported::FrameBeforeSequenceHeader(_))));
        assert!(matches!(d.video(0, &ex_tag(true, 0, b"hvc1", &record)).unwrap(), Demuxed::Config));
        assert_eq!(d.tracks().video, Some(CodecConfig::Hevc { record: Bytes::copy_from_slice(&record) }));

        // CodedFrames: a 24-bit composition time offset (here 40 ms), then length-prefixed NALUs.
        let coded = ex_tag(true, 1, b"hvc1", &[0, 0, 40, 0, 0, 0, 2, 0x26, 0x01]);
        let Demuxed::Frame(frame) = d.video(1000, &coded).unwrap() else { panic!("a frame") };
        assert_eq!((frame.dts.as_millis(), frame.pts.as_millis(), frame.keyframe), (1000, 1040, true));
        assert_eq!(frame.payload.as_ptr(), coded[8..].as_ptr(), "the payload is a slice of the message");
        // A negative offset (SI24).
        let Demuxed::Frame(frame) = d.video(1033, &ex_tag(false, 1, b"hvc1", &[0xff, 0xff, 0xdf, 9])).unwrap() else {
            panic!("a frame")
        };
        assert_eq!(frame.pts.as_millis(), 1033 - 33);
        // CodedFramesX: no offset.
        let Demuxed::Frame(frame) = d.video(1066, &ex_tag(false, 3, b"hvc1", &[0, 0, 0, 1, 0x02])).unwrap() else {
            panic!("a frame")
        };
        assert_eq!((frame.pts.as_millis(), frame.keyframe, &frame.payload[..]), (1066, false, &[0, 0, 0, 1, 2][..]));
        assert!(d.video(1100, &ex_tag(false, 1, b"hvc1", &[0, 0])).is_err(), "a truncated offset is an error");
        assert!(matches!(d.video(1100, &ex_tag(false, 2, b"hvc1", &[])).unwrap(), Demuxed::Config), "SequenceEnd");
        assert!(matches!(d.video(1100, &ex_tag(false, 6, b"hvc1", &[0])).unwrap(), Demuxed::Dropped(_)), "multitrack");
    }

    #[test]
    fn enhanced_rtmp_av1_frames_carry_no_offset() {
        let mut d = MediaDemuxer::default();
        let av1c = [0x81u8, 0x08, 0x0c, 0x00];
        assert!(matches!(d.video(0, &ex_tag(true, 0, b"av01", &av1c)).unwrap(), Demuxed::Config));
        assert_eq!(d.tracks().video, Some(CodecConfig::Av1 { record: Bytes::copy_from_slice(&av1c) }));
        let obus = [0x12u8, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00];
        let Demuxed::Frame(frame) = d.video(40, &ex_tag(true, 1, b"av01", &obus)).unwrap() else { panic!("a frame") };
        assert_eq!((frame.pts.as_millis(), &frame.payload[..]), (40, &obus[..]));
        // A switch of codec within the session: frames of the old FourCC no longer match.
        let hevc_frame = ex_tag(false, 3, b"hvc1", &[0, 0, 0, 1, 2]);
        assert!(matches!(
            d.video(80, &hevc_frame).unwrap(),
            Demuxed::Dropped(Unsupported::FrameBeforeSequenceHeader(_))
        ));
    }

    #[test]
    fn enhanced_rtmp_vp9_sequence_start_and_frames() {
        let mut d = MediaDemuxer::default();
        let vpcc = [0u8, 31, 0x82, 0x02, 0x02, 0x02, 0, 0];
        assert!(matches!(d.video(0, &ex_tag(true, 0, b"vp09", &vpcc)).unwrap(), Demuxed::Config));
        assert_eq!(d.tracks().video, Some(CodecConfig::Vp9 { record: Bytes::copy_from_slice(&vpcc), size: None }));
        let frame_bytes = [0x82u8, 0x49, 0x83, 0x42, 0x00];
        let Demuxed::Frame(frame) = d.video(33, &ex_tag(true, 1, b"vp09", &frame_bytes)).unwrap() else { panic!() };
        assert_eq!((frame.pts.as_millis(), frame.keyframe, &frame.payload[..]), (33, true, &frame_bytes[..]));
        assert_eq!(d.tracks().resolution(), None, "a header too short for the size");
        // A whole key frame header (libvpx, 640x360): vpcC lacks the size, the frame gives it.
        let key = rill_media::testing::VP9_640X360_KEYFRAME_HEAD;
        assert!(matches!(d.video(66, &ex_tag(true, 1, b"vp09", &key)).unwrap(), Demuxed::Frame(_)));
        assert_eq!(d.tracks().resolution(), Some((640, 360)));
    }

    #[test]
    fn unsupported_fourccs_are_reported_once() {
        let mut d = MediaDemuxer::default();
        let Demuxed::Dropped(what) = d.video(0, &ex_tag(true, 0, b"vp08", &[1])).unwrap() else { panic!() };
        assert_eq!(what, Unsupported::VideoCodec("vp08".into()));
        assert!(d.first_time(&what));
        assert!(!d.first_time(&what));
        let made_up = (0..1000).filter(|i| d.first_time(&Unsupported::VideoCodec(format!("x{i}")))).count();
        assert_eq!(made_up, 7, "reports stop after 8 kinds");
        let Demuxed::Dropped(what) = d.video(0, &ex_tag(true, 0, b"\x00\xffab", &[1])).unwrap() else { panic!() };
        assert_eq!(what, Unsupported::VideoCodec("\\x00\\xffab".into()), "non-printable FourCCs are escaped");
    }
}
