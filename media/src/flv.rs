//! FLV tags (Adobe FLV spec v10.1 §E.4, with the Enhanced RTMP extended video header: the
//! veovera E-RTMP spec's `IsExHeader` form carrying `hvc1`, `av01`, `vp09` and `avc1` by FourCC).
//!
//! Parsing turns an RTMP audio/video message body (= an FLV tag body) into typed packets whose
//! payloads are slices of the input `Bytes` (no copy). Muxing produces small headers that sit
//! beside the untouched payload, for vectored writes (HTTP-FLV) or RTMP chunking (RTMP play).

use crate::frame::{Frame, TrackId};
use crate::track::{CodecConfig, Tracks};
use bytes::Bytes;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FlvError {
    #[error("empty {0} tag")]
    Empty(&'static str),
    #[error("{kind} tag header truncated: {len} bytes")]
    Truncated { kind: &'static str, len: usize },
    #[error("unknown AVC packet type {0}")]
    AvcPacketType(u8),
}

/// FLV tag types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagType {
    Audio = 8,
    Video = 9,
    Script = 18,
}

/// Legacy FLV video codec ids.
pub mod video_codec {
    pub const AVC: u8 = 7;
}

/// Enhanced RTMP video packet types (the low 4 bits of an `IsExHeader` tag's first byte).
pub mod video_packet {
    /// The decoder configuration record (hvcC, av1C, avcC).
    pub const SEQUENCE_START: u8 = 0;
    /// Frames; for `hvc1` and `avc1` preceded by a 24-bit composition time offset.
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    /// Frames without a composition time offset (it is zero).
    pub const CODED_FRAMES_X: u8 = 3;
    pub const METADATA: u8 = 4;
    pub const MPEG2TS_SEQUENCE_START: u8 = 5;
    pub const MULTITRACK: u8 = 6;
}

/// The video FourCCs Rill takes and sends in Enhanced RTMP form.
pub const ENHANCED_VIDEO_FOURCCS: [&str; 4] = ["hvc1", "av01", "vp09", "avc1"];

/// Legacy FLV sound formats.
pub mod sound_format {
    pub const AAC: u8 = 10;
}

/// A parsed video tag body.
#[derive(Clone, Debug, PartialEq)]
pub enum VideoTag {
    /// H.264 in the legacy FLV layout.
    Avc { keyframe: bool, packet: AvcPacket },
    /// An Enhanced RTMP tag (`IsExHeader`): FourCC (`hvc1`, `av01`, `vp09`, …), packet type, body.
    Enhanced { keyframe: bool, fourcc: [u8; 4], packet_type: u8, body: Bytes },
    /// Video info/command frame (frame type 5): carries no picture.
    Command,
    /// A legacy codec Rill does not ingest (Sorenson, VP6, screen video…).
    Unsupported { codec_id: u8 },
}

/// The AVC packet inside an FLV video tag.
#[derive(Clone, Debug, PartialEq)]
pub enum AvcPacket {
    /// AVCDecoderConfigurationRecord.
    SequenceHeader(Bytes),
    /// AVCC NAL units with the composition time offset (pts − dts) in milliseconds.
    Nalus {
        composition_time_ms: i32,
        data: Bytes,
    },
    EndOfSequence,
}

/// A parsed audio tag body.
#[derive(Clone, Debug, PartialEq)]
pub enum AudioTag {
    /// AudioSpecificConfig.
    AacSequenceHeader(Bytes),
    /// One raw AAC access unit.
    AacRaw(Bytes),
    Unsupported {
        sound_format: u8,
    },
}

/// Parses a video tag body.
pub fn parse_video(body: &Bytes) -> Result<VideoTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Empty("video"))?;
    if first & 0x80 != 0 {
        // Enhanced RTMP: [IsExHeader:1][FrameType:3][PacketType:4][FourCC:32]
        if body.len() < 5 {
            return Err(FlvError::Truncated { kind: "enhanced video", len: body.len() });
        }
        let frame_type = (first >> 4) & 0x07;
        return Ok(VideoTag::Enhanced {
            keyframe: frame_type == 1,
            fourcc: [body[1], body[2], body[3], body[4]],
            packet_type: first & 0x0f,
            body: body.slice(5..),
        });
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    if frame_type == 5 {
        return Ok(VideoTag::Command);
    }
    if codec_id != video_codec::AVC {
        return Ok(VideoTag::Unsupported { codec_id });
    }
    if body.len() < 5 {
        return Err(FlvError::Truncated { kind: "AVC video", len: body.len() });
    }
    let cts = (((body[2] as u32) << 16 | (body[3] as u32) << 8 | body[4] as u32) << 8) as i32 >> 8;
    let packet = match body[1] {
        0 => AvcPacket::SequenceHeader(body.slice(5..)),
        1 => AvcPacket::Nalus { composition_time_ms: cts, data: body.slice(5..) },
        2 => AvcPacket::EndOfSequence,
        t => return Err(FlvError::AvcPacketType(t)),
    };
    Ok(VideoTag::Avc { keyframe: frame_type == 1, packet })
}

/// Parses an audio tag body.
pub fn parse_audio(body: &Bytes) -> Result<AudioTag, FlvError> {
    let first = *body.first().ok_or(FlvError::Empty("audio"))?;
    let sound_format = first >> 4;
    if sound_format != sound_format::AAC {
        return Ok(AudioTag::Unsupported { sound_format });
    }
    match body.get(1) {
        None => Err(FlvError::Truncated { kind: "AAC audio", len: body.len() }),
        Some(0) => Ok(AudioTag::AacSequenceHeader(body.slice(2..))),
        Some(_) => Ok(AudioTag::AacRaw(body.slice(2..))),
    }
}

/// An FLV tag body ready to send: a few header bytes, then the untouched payload.
#[derive(Clone, Debug)]
pub struct TagBody {
    pub tag_type: TagType,
    /// FLV/RTMP timestamp: the decode time in milliseconds, modulo 2³².
    pub timestamp_ms: u32,
    prefix: [u8; 8],
    prefix_len: u8,
    pub payload: Bytes,
}

impl TagBody {
    /// The codec header bytes that precede the payload.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix[..self.prefix_len as usize]
    }

    /// Length of the whole tag body.
    pub fn len(&self) -> usize {
        self.prefix_len as usize + self.payload.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn avc(keyframe: bool, packet_type: u8, cts_ms: i32, timestamp_ms: u32, payload: Bytes) -> TagBody {
        let frame_type = if keyframe { 1 } else { 2 };
        let cts = (cts_ms as u32).to_be_bytes();
        TagBody {
            tag_type: TagType::Video,
            timestamp_ms,
            prefix: [(frame_type << 4) | video_codec::AVC, packet_type, cts[1], cts[2], cts[3], 0, 0, 0],
            prefix_len: 5,
            payload,
        }
    }

    /// An Enhanced RTMP video tag: `[IsExHeader|FrameType|PacketType][FourCC]`, then the 24-bit
    /// composition time offset when `cts_ms` is given.
    fn enhanced(
        keyframe: bool,
        fourcc: [u8; 4],
        packet_type: u8,
        cts_ms: Option<i32>,
        timestamp_ms: u32,
        payload: Bytes,
    ) -> TagBody {
        let frame_type: u8 = if keyframe { 1 } else { 2 };
        let mut prefix = [0x80 | (frame_type << 4) | packet_type, fourcc[0], fourcc[1], fourcc[2], fourcc[3], 0, 0, 0];
        let mut prefix_len = 5;
        if let Some(cts) = cts_ms {
            prefix[5..8].copy_from_slice(&(cts as u32).to_be_bytes()[1..]);
            prefix_len = 8;
        }
        TagBody { tag_type: TagType::Video, timestamp_ms, prefix, prefix_len, payload }
    }

    fn aac(packet_type: u8, timestamp_ms: u32, payload: Bytes) -> TagBody {
        // AAC is always signalled as 44 kHz, 16-bit, stereo; the AudioSpecificConfig is authoritative.
        TagBody {
            tag_type: TagType::Audio,
            timestamp_ms,
            prefix: [(sound_format::AAC << 4) | 0x0f, packet_type, 0, 0, 0, 0, 0, 0],
            prefix_len: 2,
            payload,
        }
    }
}

/// The codec sequence headers of the FLV-compatible tracks, stamped at `timestamp_ms`: legacy
/// FLV for H.264 and AAC, Enhanced RTMP for HEVC and AV1.
pub fn sequence_headers(tracks: &Tracks, timestamp_ms: u32) -> Vec<TagBody> {
    let mut out = Vec::with_capacity(2);
    match &tracks.video {
        Some(CodecConfig::Avc(avc)) => out.push(TagBody::avc(true, 0, 0, timestamp_ms, avc.record.clone())),
        Some(
            codec @ (CodecConfig::Hevc { record } | CodecConfig::Av1 { record } | CodecConfig::Vp9 { record, .. }),
        ) => {
            let fourcc = enhanced_fourcc(codec).expect("HEVC and AV1 have FourCCs");
            out.push(TagBody::enhanced(true, fourcc, video_packet::SEQUENCE_START, None, timestamp_ms, record.clone()));
        }
        _ => {}
    }
    if let Some(CodecConfig::Aac(aac)) = &tracks.audio {
        out.push(TagBody::aac(0, timestamp_ms, aac.asc.clone()));
    }
    out
}

/// The tag body carrying `frame` (legacy FLV, or Enhanced RTMP for HEVC and AV1), or `None`
/// when its codec has no FLV form.
pub fn frame_body(frame: &Frame, tracks: &Tracks) -> Option<TagBody> {
    let timestamp_ms = frame.dts.as_millis() as u32;
    match (frame.track, frame.track_codec(tracks)?) {
        (TrackId::VIDEO, CodecConfig::Avc(_)) => {
            let cts = (frame.pts.as_millis() - frame.dts.as_millis()) as i32;
            Some(TagBody::avc(frame.keyframe, 1, cts, timestamp_ms, frame.payload.clone()))
        }
        (TrackId::VIDEO, CodecConfig::Hevc { .. }) => {
            let cts = (frame.pts.as_millis() - frame.dts.as_millis()) as i32;
            let (packet_type, cts) =
                if cts == 0 { (video_packet::CODED_FRAMES_X, None) } else { (video_packet::CODED_FRAMES, Some(cts)) };
            Some(TagBody::enhanced(frame.keyframe, *b"hvc1", packet_type, cts, timestamp_ms, frame.payload.clone()))
        }
        (TrackId::VIDEO, codec @ (CodecConfig::Av1 { .. } | CodecConfig::Vp9 { .. })) => Some(TagBody::enhanced(
            frame.keyframe,
            enhanced_fourcc(codec).expect("AV1 and VP9 have FourCCs"),
            video_packet::CODED_FRAMES,
            None,
            timestamp_ms,
            frame.payload.clone(),
        )),
        (TrackId::AUDIO, CodecConfig::Aac(_)) => Some(TagBody::aac(1, timestamp_ms, frame.payload.clone())),
        _ => None,
    }
}

/// Whether FLV (legacy or Enhanced RTMP) carries `codec` here: H.264, AAC, HEVC, AV1, VP9.
/// VP8 and Opus (a WebRTC publisher's) are not sent: their frames are skipped.
pub fn carries(codec: &CodecConfig) -> bool {
    !matches!(codec, CodecConfig::Vp8 { .. } | CodecConfig::Opus { .. })
}

/// The Enhanced RTMP FourCC of a video codec sent in that form.
fn enhanced_fourcc(codec: &CodecConfig) -> Option<[u8; 4]> {
    match codec {
        CodecConfig::Hevc { .. } => Some(*b"hvc1"),
        CodecConfig::Av1 { .. } => Some(*b"av01"),
        CodecConfig::Vp9 { .. } => Some(*b"vp09"),
        _ => None,
    }
}

impl Frame {
    fn track_codec<'t>(&self, tracks: &'t Tracks) -> Option<&'t CodecConfig> {
        match self.track {
            TrackId::VIDEO => tracks.video.as_ref(),
            TrackId::AUDIO => tracks.audio.as_ref(),
            _ => None,
        }
    }
}

/// The FLV file header plus PreviousTagSize0.
pub fn file_header(has_audio: bool, has_video: bool) -> [u8; 13] {
    let flags = (has_audio as u8) << 2 | has_video as u8;
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// The 11-byte FLV tag header for `body`.
pub fn tag_header(body: &TagBody) -> [u8; 11] {
    let size = (body.len() as u32).to_be_bytes();
    let ts = body.timestamp_ms.to_be_bytes();
    [body.tag_type as u8, size[1], size[2], size[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0]
}

/// PreviousTagSize after `body`'s tag.
pub fn previous_tag_size(body: &TagBody) -> [u8; 4] {
    (11 + body.len() as u32).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::MediaTime;

    #[test]
    fn parses_avc_nalus_with_negative_cts() {
        let body = Bytes::from_static(&[0x27, 1, 0xff, 0xff, 0xd8, 0, 0, 0, 1, 0x41]);
        let tag = parse_video(&body).unwrap();
        match tag {
            VideoTag::Avc { keyframe: false, packet: AvcPacket::Nalus { composition_time_ms, data } } => {
                assert_eq!(composition_time_ms, -40);
                assert_eq!(data.as_ptr(), body[5..].as_ptr(), "payload is a slice, not a copy");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_enhanced_header() {
        let body = Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1', 1, 2, 3]);
        assert_eq!(
            parse_video(&body).unwrap(),
            VideoTag::Enhanced {
                keyframe: true,
                fourcc: *b"hvc1",
                packet_type: 0,
                body: Bytes::from_static(&[1, 2, 3])
            }
        );
    }

    #[test]
    fn truncated_tags_are_errors() {
        assert!(parse_video(&Bytes::new()).is_err());
        assert!(parse_video(&Bytes::from_static(&[0x17, 1])).is_err());
        assert!(parse_video(&Bytes::from_static(&[0x17, 9, 0, 0, 0])).is_err());
        assert!(parse_audio(&Bytes::from_static(&[0xaf])).is_err());
        assert_eq!(parse_audio(&Bytes::from_static(&[0x2f, 1])).unwrap(), AudioTag::Unsupported { sound_format: 2 });
    }

    #[test]
    fn mux_round_trips_through_parse() {
        let tracks = Tracks {
            video: Some(CodecConfig::Hevc { record: Bytes::new() }),
            audio: Some(CodecConfig::Aac(crate::AacConfig::from_asc(Bytes::from_static(&[0x12, 0x10])).unwrap())),
            encoder: None,
        };
        let frame = Frame {
            track: TrackId::AUDIO,
            pts: MediaTime::from_millis(0x0100_0010),
            dts: MediaTime::from_millis(0x0100_0010),
            keyframe: true,
            payload: Bytes::from_static(&[0x21, 0x10]),
        };
        let body = frame_body(&frame, &tracks).unwrap();
        assert_eq!(body.payload.as_ptr(), frame.payload.as_ptr());
        let mut whole = body.prefix().to_vec();
        whole.extend_from_slice(&body.payload);
        assert_eq!(parse_audio(&Bytes::from(whole)).unwrap(), AudioTag::AacRaw(frame.payload.clone()));
        let header = tag_header(&body);
        assert_eq!(header[..4], [8, 0, 0, 4]);
        assert_eq!(header[4..8], [0, 0, 0x10, 0x01], "extended timestamp byte last");
        assert_eq!(previous_tag_size(&body), 15u32.to_be_bytes());
        let hevc = frame_body(&Frame { track: TrackId::VIDEO, ..frame.clone() }, &tracks).unwrap();
        assert_eq!(hevc.prefix(), [0x93, b'h', b'v', b'c', b'1'], "keyframe, CodedFramesX (no offset)");
        let opus = Tracks { audio: Some(CodecConfig::Opus { channels: 2, sample_rate: 48_000 }), ..tracks };
        assert!(frame_body(&frame, &opus).is_none(), "Opus has no FLV form here");
    }

    #[test]
    fn enhanced_rtmp_mux_round_trips_through_parse() {
        let record = Bytes::from_static(&[1, 2, 3, 4]);
        for (codec, fourcc) in [
            (CodecConfig::Hevc { record: record.clone() }, *b"hvc1"),
            (CodecConfig::Av1 { record: record.clone() }, *b"av01"),
            (CodecConfig::Vp9 { record: record.clone(), size: None }, *b"vp09"),
        ] {
            let tracks = Tracks { video: Some(codec), audio: None, encoder: None };
            let [header] = &sequence_headers(&tracks, 7)[..] else { panic!("one header") };
            let parsed = parse_video(&[header.prefix(), &header.payload[..]].concat().into()).unwrap();
            assert_eq!(
                parsed,
                VideoTag::Enhanced {
                    keyframe: true,
                    fourcc,
                    packet_type: video_packet::SEQUENCE_START,
                    body: record.clone()
                }
            );
            let frame = Frame {
                track: TrackId::VIDEO,
                pts: MediaTime::from_millis(1040),
                dts: MediaTime::from_millis(1000),
                keyframe: false,
                payload: Bytes::from_static(&[9, 9]),
            };
            let body = frame_body(&frame, &tracks).unwrap();
            assert_eq!(body.timestamp_ms, 1000);
            let VideoTag::Enhanced { keyframe: false, fourcc: f, packet_type, body: rest } =
                parse_video(&[body.prefix(), &body.payload[..]].concat().into()).unwrap()
            else {
                panic!("not enhanced")
            };
            assert_eq!((f, packet_type), (fourcc, video_packet::CODED_FRAMES));
            // hvc1 coded frames carry the 40 ms composition offset; av01 ones carry none.
            let expected: &[u8] = if fourcc == *b"hvc1" { &[0, 0, 40, 9, 9] } else { &[9, 9] };
            assert_eq!(&rest[..], expected);
        }
    }
}
