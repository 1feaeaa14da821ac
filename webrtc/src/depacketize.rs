//! Bounded RTP depacketizers for WHIP's non-H.264 video: VP8 (RFC 7741), VP9
//! (RFC 9628) and AV1 (the AOM "RTP Payload Format for AV1"). Ours rather than webrtc-rs's
//! codec packets: every read is bounds-checked, a frame is capped at
//! [`MAX_ACCESS_UNIT`](crate::whip::MAX_ACCESS_UNIT), and a lost packet drops the frame in
//! progress (the ingest then asks for a keyframe).
//!
//! A frame ends on the marker bit or when the next RTP timestamp starts. Each complete frame
//! comes out as a [`CodedFrame`]: the codec's bitstream as ISO-BMFF / Enhanced RTMP carry it
//! (VP8/VP9: the frame as the encoder wrote it; AV1: the temporal unit's OBUs, every one with
//! `obu_has_size_field` set, temporal delimiters dropped), whether it is a keyframe, and the
//! codec configuration read from it (VP8 size; VP9 key frame header → vpcC and size, AV1
//! sequence header OBU → av1C, both by [`rill_media::vp9`] and [`rill_media::av1`]).

use crate::whip::MAX_ACCESS_UNIT;
use bytes::{BufMut, Bytes, BytesMut};
use rill_media::av1::{self, leb128, obu_type, put_leb128, Obu};
use rill_media::track::CodecConfig;
use rill_media::vp9::KeyframeHeader;
use thiserror::Error;

/// Non-H.264 video codecs WHIP takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    Av1,
}

/// Why a packet could not be used (the frame in progress is then dropped).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DepacketizeError {
    #[error("payload descriptor or aggregation header is truncated")]
    Truncated,
    #[error("frame continues without its first packet")]
    NoStart,
    #[error("frame exceeds {MAX_ACCESS_UNIT} bytes")]
    TooLarge,
    #[error("malformed OBU")]
    BadObu,
}

/// One reassembled video frame.
#[derive(Debug, Clone, PartialEq)]
pub struct CodedFrame {
    pub rtp_time: u32,
    pub keyframe: bool,
    pub data: Bytes,
    /// The configuration this frame carries (keyframes; AV1 sequence headers).
    pub config: Option<CodecConfig>,
}

/// RTP → frames for one VP8, VP9 or AV1 track.
#[derive(Debug)]
pub struct VideoDepacketizer {
    codec: VideoCodec,
    buf: BytesMut,
    rtp_time: Option<u32>,
    sequence: SequenceTracker,
    broken: bool,
    /// AV1: the first packet of the frame had the N bit (new coded video sequence).
    av1_new_sequence: bool,
    /// AV1: an OBU fragment continued in the next packet (Y bit).
    av1_fragment: Option<BytesMut>,
    /// AV1: the last sequence header OBU seen in this frame (with its size field).
    av1_sequence_header: Option<Bytes>,
    /// Frames dropped (loss, overflow, malformed).
    pub dropped: u64,
}

impl VideoDepacketizer {
    pub fn new(codec: VideoCodec) -> VideoDepacketizer {
        VideoDepacketizer {
            codec,
            buf: BytesMut::new(),
            rtp_time: None,
            sequence: SequenceTracker::default(),
            broken: false,
            av1_new_sequence: false,
            av1_fragment: None,
            av1_sequence_header: None,
            dropped: 0,
        }
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Feeds one packet; returns the frame it completes (marker bit, or the next timestamp
    /// starting).
    pub fn push(&mut self, seq: u16, rtp_time: u32, marker: bool, payload: &[u8]) -> Option<CodedFrame> {
        let mut done = None;
        match self.sequence.check(seq) {
            Sequence::Stale => return None, // late or duplicate
            Sequence::Gap => {
                self.broken = true;
                self.av1_fragment = None;
            }
            Sequence::Next => {}
        }
        if self.rtp_time.is_some_and(|t| t != rtp_time) {
            done = self.finish();
        }
        self.rtp_time = Some(rtp_time);
        if !self.broken {
            let parsed = match self.codec {
                VideoCodec::Vp8 => self.parse_vp8(payload),
                VideoCodec::Vp9 => self.parse_vp9(payload),
                VideoCodec::Av1 => self.parse_av1(payload),
            };
            if parsed.is_err() {
                self.broken = true;
                self.av1_fragment = None;
            }
        }
        if marker {
            done = self.finish().or(done);
        }
        done
    }

    fn append(&mut self, data: &[u8]) -> Result<(), DepacketizeError> {
        if self.buf.len() + data.len() > MAX_ACCESS_UNIT {
            return Err(DepacketizeError::TooLarge);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// RFC 7741 §4.2 payload descriptor, then the VP8 payload.
    fn parse_vp8(&mut self, p: &[u8]) -> Result<(), DepacketizeError> {
        let b0 = *p.first().ok_or(DepacketizeError::Truncated)?;
        let mut off = 1;
        if b0 & 0x80 != 0 {
            let x = *p.get(off).ok_or(DepacketizeError::Truncated)?;
            off += 1;
            if x & 0x80 != 0 {
                let pid = *p.get(off).ok_or(DepacketizeError::Truncated)?;
                off += if pid & 0x80 != 0 { 2 } else { 1 };
            }
            if x & 0x40 != 0 {
                off += 1; // TL0PICIDX
            }
            if x & 0x30 != 0 {
                off += 1; // TID/Y/KEYIDX
            }
        }
        let data = p.get(off..).ok_or(DepacketizeError::Truncated)?;
        let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
        self.start_or_continue(start)?;
        self.append(data)
    }

    /// RFC 9628 §4.2 payload descriptor, then the VP9 payload.
    fn parse_vp9(&mut self, p: &[u8]) -> Result<(), DepacketizeError> {
        let b0 = *p.first().ok_or(DepacketizeError::Truncated)?;
        let byte = |off: usize| p.get(off).copied().ok_or(DepacketizeError::Truncated);
        let (i, pbit, l, f, b, v) =
            (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x20 != 0, b0 & 0x10 != 0, b0 & 0x08 != 0, b0 & 0x02 != 0);
        let mut off = 1;
        if i {
            off += if byte(off)? & 0x80 != 0 { 2 } else { 1 };
        }
        if l {
            off += if f { 1 } else { 2 };
        }
        if f && pbit {
            for _ in 0..3 {
                let diff = byte(off)?;
                off += 1;
                if diff & 1 == 0 {
                    break;
                }
            }
        }
        if v {
            let ss = byte(off)?;
            off += 1;
            let spatial_layers = (ss >> 5) as usize + 1;
            if ss & 0x10 != 0 {
                off += 4 * spatial_layers;
            }
            if ss & 0x08 != 0 {
                let groups = byte(off)?;
                off += 1;
                for _ in 0..groups {
                    let g = byte(off)?;
                    off += 1 + ((g >> 2) & 3) as usize;
                }
            }
        }
        let data = p.get(off..).ok_or(DepacketizeError::Truncated)?;
        self.start_or_continue(b)?;
        self.append(data)
    }

    /// A frame's first packet must carry the start flag.
    fn start_or_continue(&mut self, start: bool) -> Result<(), DepacketizeError> {
        // A second start within one timestamp is a further spatial layer: it follows.
        if !start && self.buf.is_empty() {
            return Err(DepacketizeError::NoStart);
        }
        Ok(())
    }

    /// AV1 RTP §4.4 aggregation header and OBU elements.
    fn parse_av1(&mut self, p: &[u8]) -> Result<(), DepacketizeError> {
        let agg = *p.first().ok_or(DepacketizeError::Truncated)?;
        let (z, y, w, n) = (agg & 0x80 != 0, agg & 0x40 != 0, ((agg >> 4) & 3) as usize, agg & 0x08 != 0);
        if self.buf.is_empty() && self.av1_fragment.is_none() {
            if z {
                return Err(DepacketizeError::NoStart);
            }
            self.av1_new_sequence = n;
        }
        let mut rest = &p[1..];
        let mut index = 0;
        while !rest.is_empty() {
            let last_by_count = w != 0 && index + 1 == w;
            let element = if last_by_count {
                std::mem::take(&mut rest)
            } else {
                let (len, k) = leb128(rest).ok_or(DepacketizeError::Truncated)?;
                let len = usize::try_from(len).map_err(|_| DepacketizeError::Truncated)?;
                let end = k.checked_add(len).ok_or(DepacketizeError::Truncated)?;
                let element = rest.get(k..end).ok_or(DepacketizeError::Truncated)?;
                rest = &rest[end..];
                element
            };
            let continues = index == 0 && z;
            let mut obu = match (continues, self.av1_fragment.take()) {
                (true, Some(fragment)) => fragment,
                (true, None) => return Err(DepacketizeError::NoStart),
                (false, Some(_)) => return Err(DepacketizeError::BadObu),
                (false, None) => BytesMut::new(),
            };
            if obu.len() + element.len() > MAX_ACCESS_UNIT {
                return Err(DepacketizeError::TooLarge);
            }
            obu.extend_from_slice(element);
            if rest.is_empty() && y {
                self.av1_fragment = Some(obu);
            } else {
                self.push_obu(&obu)?;
            }
            index += 1;
            if last_by_count {
                break;
            }
        }
        Ok(())
    }

    /// One complete OBU: rewritten with its size field, temporal delimiters and padding dropped.
    fn push_obu(&mut self, obu: &[u8]) -> Result<(), DepacketizeError> {
        let obu = Obu::parse(obu).map_err(|_| DepacketizeError::BadObu)?;
        if matches!(obu.obu_type, obu_type::TEMPORAL_DELIMITER | obu_type::PADDING) {
            return Ok(());
        }
        let mut out = BytesMut::with_capacity(obu.header.len() + 8 + obu.payload.len());
        out.put_u8(obu.header[0] | 0x02);
        out.extend_from_slice(&obu.header[1..]);
        put_leb128(&mut out, obu.payload.len() as u64);
        out.extend_from_slice(obu.payload);
        if obu.obu_type == obu_type::SEQUENCE_HEADER {
            self.av1_sequence_header = Some(out.clone().freeze());
        }
        self.append(&out)
    }

    fn finish(&mut self) -> Option<CodedFrame> {
        let rtp_time = self.rtp_time.take()?;
        let data = std::mem::take(&mut self.buf).freeze();
        let fragment = self.av1_fragment.take();
        let sequence_header = self.av1_sequence_header.take();
        let new_sequence = std::mem::replace(&mut self.av1_new_sequence, false);
        if std::mem::replace(&mut self.broken, false) || fragment.is_some() {
            self.dropped += 1;
            return None;
        }
        if data.is_empty() {
            return None;
        }
        let (keyframe, config) = match self.codec {
            VideoCodec::Vp8 => match vp8_keyframe_size(&data) {
                Some((width, height)) => (true, Some(CodecConfig::Vp8 { width, height })),
                None => (false, None),
            },
            VideoCodec::Vp9 => match KeyframeHeader::parse(&data) {
                Some(h) => {
                    (true, Some(CodecConfig::Vp9 { record: h.config_record(), size: Some((h.width, h.height)) }))
                }
                None => (false, None),
            },
            VideoCodec::Av1 => {
                let record = sequence_header.as_deref().and_then(|obu| av1::config_record(obu).ok());
                (new_sequence || record.is_some(), record.map(|record| CodecConfig::Av1 { record }))
            }
        };
        Some(CodedFrame { rtp_time, keyframe, data, config })
    }
}

/// A VP8 key frame's size (RFC 6386 §9.1: frame tag P bit clear, start code 9d 01 2a).
pub fn vp8_keyframe_size(frame: &[u8]) -> Option<(u16, u16)> {
    let head = frame.get(..10)?;
    if head[0] & 1 != 0 || head[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([head[6], head[7]]) & 0x3fff;
    let height = u16::from_le_bytes([head[8], head[9]]) & 0x3fff;
    Some((width, height))
}

/// Where an RTP packet falls relative to the last one accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sequence {
    /// The next packet (or the first).
    Next,
    /// Packets are missing before this one: the frame in progress is lost.
    Gap,
    /// Older than, or the same as, the last packet: ignore it.
    Stale,
}

/// RTP sequence numbers as every depacketizer follows them (wrapping at 2¹⁶).
#[derive(Debug, Default)]
pub(crate) struct SequenceTracker {
    last: Option<u16>,
}

impl SequenceTracker {
    /// Classifies `seq`, and takes it as the last one unless it is stale.
    pub(crate) fn check(&mut self, seq: u16) -> Sequence {
        let verdict = match self.last {
            None => Sequence::Next,
            Some(last) if seq.wrapping_sub(last) == 1 => Sequence::Next,
            Some(last) if seq.wrapping_sub(last) > 0x8000 || seq == last => return Sequence::Stale,
            Some(_) => Sequence::Gap,
        };
        self.last = Some(seq);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 key frame's first bytes: frame tag (key, show), start code, 320x240.
    const VP8_KEY: &[u8] = &[0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0x11, 0x22];

    #[test]
    fn vp8_frames_keyframes_and_size() {
        let mut d = VideoDepacketizer::new(VideoCodec::Vp8);
        // X=1, I=1 with a 15-bit picture id, S=1, PID=0.
        let mut first = vec![0x90, 0x80, 0x81, 0x23];
        first.extend_from_slice(&VP8_KEY[..6]);
        assert_eq!(d.push(1, 3000, false, &first), None);
        let mut second = vec![0x80, 0x80, 0x81, 0x23];
        second.extend_from_slice(&VP8_KEY[6..]);
        let f = d.push(2, 3000, true, &second).expect("marker ends the frame");
        assert!(f.keyframe);
        assert_eq!(&f.data[..], VP8_KEY);
        assert_eq!(f.config, Some(CodecConfig::Vp8 { width: 320, height: 240 }));
        // An inter frame (P bit set) without a descriptor extension.
        let f = d.push(3, 6000, true, &[0x10, 0x51, 0x02, 0x00]).unwrap();
        assert!(!f.keyframe && f.config.is_none());
        // A continuation without its start is dropped.
        assert_eq!(d.push(5, 9000, true, &[0x00, 1, 2]), None);
        assert_eq!(d.dropped, 1);
    }

    #[test]
    fn vp9_keyframe_gives_vpcc() {
        // Uncompressed header: marker 2, profile 0, key frame, shown, sync code, BT.709,
        // limited range, 640x360.
        let mut w = BitWriter::default();
        w.put(2, 2);
        w.put(0, 2); // profile 0
        w.put(0, 1); // show_existing_frame
        w.put(0, 1); // key frame
        w.put(1, 1); // show_frame
        w.put(0, 1); // error_resilient_mode
        w.put(0x49_83_42, 24);
        w.put(2, 3); // CS_BT_709
        w.put(0, 1); // color_range
        w.put(639, 16);
        w.put(359, 16);
        let header = w.finish();
        let mut d = VideoDepacketizer::new(VideoCodec::Vp9);
        // I=1 (7-bit id), B=1, V=1 with SS: one layer, Y=1 (640x360), G=0.
        let mut p = vec![0x8a, 0x05, 0x10, 0x02, 0x80, 0x01, 0x68];
        p.extend_from_slice(&header);
        let f = d.push(10, 90, true, &p).expect("one-packet frame");
        assert!(f.keyframe);
        assert_eq!(&f.data[..], &header[..]);
        let Some(CodecConfig::Vp9 { record, size }) = &f.config else { panic!("{:?}", f.config) };
        assert_eq!(&record[..], &[0, 21, 0x82, 1, 1, 1, 0, 0]);
        assert_eq!(*size, Some((640, 360)));
        assert_eq!(f.config.unwrap().rfc6381().as_deref(), Some("vp09.00.21.08"));
        // An inter frame split over two packets (B, then E).
        assert_eq!(d.push(11, 3090, false, &[0x88, 0x06, 0x86, 1, 2]), None);
        let f = d.push(12, 3090, true, &[0x84, 0x06, 3]).unwrap();
        assert!(!f.keyframe);
        assert_eq!(&f.data[..], &[0x86, 1, 2, 3]);
    }

    /// A minimal AV1 sequence header OBU: profile 0, reduced still-picture header off, one
    /// operating point at level 8 (4.0), 640x360, 8-bit 4:2:0.
    fn av1_sequence_header() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(0, 3); // seq_profile
        w.put(0, 1); // still_picture
        w.put(0, 1); // reduced_still_picture_header
        w.put(0, 1); // timing_info_present_flag
        w.put(0, 1); // initial_display_delay_present_flag
        w.put(0, 5); // operating_points_cnt_minus_1
        w.put(0, 12); // operating_point_idc
        w.put(8, 5); // seq_level_idx
        w.put(0, 1); // seq_tier
        w.put(9, 4); // frame_width_bits_minus_1
        w.put(8, 4); // frame_height_bits_minus_1
        w.put(639, 10);
        w.put(359, 9);
        w.put(0, 1); // frame_id_numbers_present_flag
        w.put(0, 3); // 128x128, filter intra, intra edge
        w.put(0, 4); // interintra, masked, warped, dual filter
        w.put(0, 1); // enable_order_hint
        w.put(1, 1); // seq_choose_screen_content_tools → 2
        w.put(1, 1); // seq_choose_integer_mv
        w.put(0, 3); // superres, cdef, restoration
        w.put(0, 1); // high_bitdepth
        w.put(0, 1); // mono_chrome
        w.put(0, 1); // color_description_present_flag
        w.put(0, 1); // color_range
        w.put(0, 2); // chroma_sample_position
        w.put(0, 1); // separate_uv_delta_q
        w.put(1, 1); // trailing bit
        let body = w.finish();
        let mut obu = vec![0x0a, body.len() as u8];
        obu.extend_from_slice(&body);
        obu
    }

    #[test]
    fn av1_sequence_header_gives_av1c_and_fragments_join() {
        let seq = av1_sequence_header();
        let record = av1::config_record(&seq).expect("parses");
        assert_eq!(&record[..4], &[0x81, 0x08, 0x0c, 0x00]);
        assert_eq!(&record[4..], &seq[..]);
        let mut d = VideoDepacketizer::new(VideoCodec::Av1);
        // Packet 1: N=1, W=0: a temporal delimiter (dropped), the sequence header without its
        // size field, and the start of a frame OBU (Y=1, continued).
        let mut p = vec![0x48, 1, 0x10];
        let seq_plain: Vec<u8> = std::iter::once(0x08).chain(seq[2..].iter().copied()).collect();
        p.push(seq_plain.len() as u8);
        p.extend_from_slice(&seq_plain);
        p.extend_from_slice(&[3, 0x30, 0xaa, 0xbb]);
        assert_eq!(d.push(1, 100, false, &p), None);
        // Packet 2: Z=1, W=1: the rest of the frame OBU.
        let f = d.push(2, 100, true, &[0x90, 0xcc]).expect("frame");
        assert!(f.keyframe);
        let mut expected = seq.clone();
        expected.extend_from_slice(&[0x32, 3, 0xaa, 0xbb, 0xcc]);
        assert_eq!(&f.data[..], &expected[..]);
        assert_eq!(f.config, Some(CodecConfig::Av1 { record }));
        // A continuation whose start was lost is dropped.
        assert_eq!(d.push(4, 200, true, &[0x90, 0xcc]), None);
        assert_eq!(d.dropped, 1);
    }

    #[test]
    fn malformed_payloads_do_not_panic() {
        let bad: [&[u8]; 10] = [
            &[],
            &[0x80],
            &[0x80, 0x80],
            &[0xff, 0xff, 0xff],
            &[0x02, 0xff],
            &[0x0a, 0xe0, 0xff],
            &[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x80],
            &[0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
            &[0x20, 0x05, 0xfa],
        ];
        for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::Av1] {
            let mut d = VideoDepacketizer::new(codec);
            for (i, p) in bad.iter().enumerate() {
                let _ = d.push(i as u16, i as u32, i % 2 == 0, p);
            }
        }
        assert_eq!(vp8_keyframe_size(&[0; 4]), None);
    }

    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn put(&mut self, v: u32, n: u32) {
            for i in (0..n).rev() {
                if self.bits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                if (v >> i) & 1 == 1 {
                    *self.bytes.last_mut().unwrap() |= 0x80 >> (self.bits % 8);
                }
                self.bits += 1;
            }
        }

        fn finish(self) -> Vec<u8> {
            self.bytes
        }
    }
}
