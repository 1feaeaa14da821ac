//! H.264/AVC bitstream helpers: the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3),
//! AVCC ↔ Annex B conversion, and the parts of the SPS (ITU-T H.264 §7.3.2.1.1) a server needs.

use crate::bits::{rbsp_from_ebsp, BitReader, BitsExhausted};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AvcError {
    #[error("AVCDecoderConfigurationRecord too short ({0} bytes)")]
    RecordTooShort(usize),
    #[error("AVCDecoderConfigurationRecord version {0} (expected 1)")]
    RecordVersion(u8),
    #[error("AVCDecoderConfigurationRecord has no SPS")]
    NoSps,
    #[error("parameter set overruns the record")]
    Truncated,
    #[error("NAL unit length {len} overruns the {remaining} remaining bytes")]
    NaluOverrun { len: usize, remaining: usize },
    #[error("not an SPS NAL unit (type {0})")]
    NotSps(u8),
    #[error("SPS: {0}")]
    Sps(#[from] BitsExhausted),
    #[error("SPS value out of range: {0}")]
    SpsRange(&'static str),
}

/// NAL unit types used by the server.
pub mod nal {
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
}

/// What a player needs to know from a sequence parameter set.
#[derive(Clone, Debug, PartialEq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub width: u32,
    pub height: u32,
    /// Frame rate from the VUI timing info, when the encoder wrote it.
    pub fps: Option<f64>,
}

/// A parsed AVCDecoderConfigurationRecord.
#[derive(Clone, Debug, PartialEq)]
pub struct DecoderConfigRecord {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    /// Bytes per NAL length prefix (1, 2 or 4).
    pub nalu_length_size: u8,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

impl DecoderConfigRecord {
    pub fn parse(record: &Bytes) -> Result<Self, AvcError> {
        if record.len() < 7 {
            return Err(AvcError::RecordTooShort(record.len()));
        }
        if record[0] != 1 {
            return Err(AvcError::RecordVersion(record[0]));
        }
        let nalu_length_size = (record[4] & 0x03) + 1;
        let mut pos = 5;
        let read_sets = |count: usize, pos: &mut usize| -> Result<Vec<Bytes>, AvcError> {
            let mut sets = Vec::with_capacity(count);
            for _ in 0..count {
                let len_bytes = record.get(*pos..*pos + 2).ok_or(AvcError::Truncated)?;
                let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
                *pos += 2;
                if *pos + len > record.len() {
                    return Err(AvcError::Truncated);
                }
                sets.push(record.slice(*pos..*pos + len));
                *pos += len;
            }
            Ok(sets)
        };
        let sps_count = (record[5] & 0x1f) as usize;
        pos += 1;
        let sps = read_sets(sps_count, &mut pos)?;
        let pps_count = *record.get(pos).ok_or(AvcError::Truncated)? as usize;
        pos += 1;
        let pps = read_sets(pps_count, &mut pos)?;
        if sps.is_empty() {
            return Err(AvcError::NoSps);
        }
        Ok(DecoderConfigRecord {
            profile_idc: record[1],
            constraint_flags: record[2],
            level_idc: record[3],
            nalu_length_size,
            sps,
            pps,
        })
    }

    /// Serializes a record with 4-byte NAL lengths from SPS/PPS NAL units.
    pub fn build(sps: &[u8], pps: &[u8]) -> Result<Bytes, AvcError> {
        if sps.len() < 4 {
            return Err(AvcError::Truncated);
        }
        let mut out = BytesMut::with_capacity(11 + sps.len() + pps.len());
        out.put_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
        out.put_u16(sps.len() as u16);
        out.put_slice(sps);
        out.put_u8(1);
        out.put_u16(pps.len() as u16);
        out.put_slice(pps);
        Ok(out.freeze())
    }
}

/// Iterates over the NAL units of an AVCC payload (length-prefixed, `length_size` bytes).
pub fn avcc_nalus(payload: &[u8], length_size: u8) -> impl Iterator<Item = Result<&[u8], AvcError>> {
    let mut rest = payload;
    let n = length_size as usize;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() < n {
            let remaining = rest.len();
            rest = &[];
            return Some(Err(AvcError::NaluOverrun { len: n, remaining }));
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        let body = &rest[n..];
        if len > body.len() {
            let remaining = body.len();
            rest = &[];
            return Some(Err(AvcError::NaluOverrun { len, remaining }));
        }
        let (nalu, tail) = body.split_at(len);
        rest = tail;
        Some(Ok(nalu))
    })
}

/// True when an AVCC payload contains an IDR slice.
pub fn avcc_has_idr(payload: &[u8], length_size: u8) -> bool {
    avcc_nalus(payload, length_size).any(|n| matches!(n, Ok(n) if !n.is_empty() && n[0] & 0x1f == nal::IDR))
}

/// AVCC → Annex B (start codes), e.g. for MPEG-TS or RTP packetizers.
pub fn avcc_to_annexb(payload: &[u8], length_size: u8) -> Result<Vec<u8>, AvcError> {
    let mut out = Vec::with_capacity(payload.len() + 16);
    for nalu in avcc_nalus(payload, length_size) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nalu?);
    }
    Ok(out)
}

/// Splits an Annex B byte stream into NAL units (start codes removed).
pub fn annexb_nalus(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(_, body)) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&(sc, _)| sc);
        while end > body && data[end - 1] == 0 {
            end -= 1; // trailing_zero_8bits / the leading zero of a 4-byte start code
        }
        out.push(&data[body..end]);
    }
    out
}

/// Annex B → AVCC with 4-byte lengths.
pub fn annexb_to_avcc(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 16);
    for nalu in annexb_nalus(data) {
        out.put_u32(nalu.len() as u32);
        out.put_slice(nalu);
    }
    out.freeze()
}

/// Parses an SPS NAL unit (with its one-byte NAL header).
pub fn parse_sps(nalu: &[u8]) -> Result<SpsInfo, AvcError> {
    let header = *nalu.first().ok_or(AvcError::Truncated)?;
    if header & 0x1f != nal::SPS {
        return Err(AvcError::NotSps(header & 0x1f));
    }
    let rbsp = rbsp_from_ebsp(&nalu[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.read_bits(8)? as u8;
    let constraint_flags = r.read_bits(8)? as u8;
    let level_idc = r.read_bits(8)? as u8;
    r.read_ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
        chroma_format_idc = r.read_ue()?;
        if chroma_format_idc > 3 {
            return Err(AvcError::SpsRange("chroma_format_idc"));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.read_bit()?;
        }
        r.read_ue()?; // bit_depth_luma_minus8
        r.read_ue()?; // bit_depth_chroma_minus8
        r.read_bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.read_bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.read_bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.read_ue()?; // log2_max_frame_num_minus4
    let poc_type = r.read_ue()?;
    if poc_type == 0 {
        r.read_ue()?; // log2_max_pic_order_cnt_lsb_minus4
    } else if poc_type == 1 {
        r.read_bit()?;
        r.read_se()?;
        r.read_se()?;
        let cycle = r.read_ue()?;
        if cycle > 255 {
            return Err(AvcError::SpsRange("num_ref_frames_in_pic_order_cnt_cycle"));
        }
        for _ in 0..cycle {
            r.read_se()?;
        }
    }
    r.read_ue()?; // max_num_ref_frames
    r.read_bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.read_ue()? as u64 + 1;
    let height_map_units = r.read_ue()? as u64 + 1;
    let frame_mbs_only = r.read_bit()?;
    if !frame_mbs_only {
        r.read_bit()?; // mb_adaptive_frame_field_flag
    }
    r.read_bit()?; // direct_8x8_inference_flag
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
    if r.read_bit()? {
        crop_l = r.read_ue()? as u64;
        crop_r = r.read_ue()? as u64;
        crop_t = r.read_ue()? as u64;
        crop_b = r.read_ue()? as u64;
    }
    let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
    let (sub_w, sub_h) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (crop_unit_x, crop_unit_y) = if chroma_array_type == 0 {
        (1, 2 - frame_mbs_only as u64)
    } else {
        (sub_w, sub_h * (2 - frame_mbs_only as u64))
    };
    let full_w = width_mbs * 16;
    let full_h = (2 - frame_mbs_only as u64) * height_map_units * 16;
    let width = full_w
        .checked_sub(crop_unit_x * (crop_l + crop_r))
        .filter(|w| (1..=16384).contains(w))
        .ok_or(AvcError::SpsRange("width"))?;
    let height = full_h
        .checked_sub(crop_unit_y * (crop_t + crop_b))
        .filter(|h| (1..=16384).contains(h))
        .ok_or(AvcError::SpsRange("height"))?;
    let fps = if r.read_bit().unwrap_or(false) { vui_fps(&mut r).ok().flatten() } else { None };
    Ok(SpsInfo { profile_idc, constraint_flags, level_idc, width: width as u32, height: height as u32, fps })
}

fn skip_scaling_list(r: &mut BitReader, size: usize) -> Result<(), AvcError> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.read_se()?;
            if !(-128..=127).contains(&delta) {
                return Err(AvcError::SpsRange("delta_scale"));
            }
            next = (last + delta + 256) % 256;
        }
        last = if next == 0 { last } else { next };
    }
    Ok(())
}

fn vui_fps(r: &mut BitReader) -> Result<Option<f64>, BitsExhausted> {
    if r.read_bit()? {
        // aspect_ratio_info_present_flag
        if r.read_bits(8)? == 255 {
            r.skip_bits(32)?; // sar_width, sar_height
        }
    }
    if r.read_bit()? {
        r.read_bit()?; // overscan_appropriate_flag
    }
    if r.read_bit()? {
        // video_signal_type_present_flag
        r.skip_bits(4)?;
        if r.read_bit()? {
            r.skip_bits(24)?;
        }
    }
    if r.read_bit()? {
        r.read_ue()?;
        r.read_ue()?;
    }
    if r.read_bit()? {
        let units = r.read_bits(32)?;
        let scale = r.read_bits(32)?;
        if units > 0 && scale > 0 {
            return Ok(Some(scale as f64 / (2.0 * units as f64)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SPS_720P_HIGH;
    // Baseline 320x240 (x264 -profile baseline, 20x15 MBs, no cropping).
    const SPS_240P_BASELINE: [u8; 10] = [0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10];

    #[test]
    fn sps_high_profile_720p() {
        let sps = parse_sps(&SPS_720P_HIGH).unwrap();
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.profile_idc, 100);
        assert_eq!(sps.level_idc, 31);
        assert_eq!(sps.fps, Some(30.0));
    }

    #[test]
    fn sps_baseline_320x240() {
        let sps = parse_sps(&SPS_240P_BASELINE).unwrap();
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.profile_idc, 66);
    }

    #[test]
    fn sps_garbage_is_an_error_not_a_panic() {
        assert!(parse_sps(&[0x67, 0x64]).is_err());
        assert!(parse_sps(&[0x68, 0, 0, 0]).is_err());
        assert!(parse_sps(&[0x67, 0x64, 0, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn hostile_scaling_list_delta_is_an_error() {
        // Found by the flv_tags fuzz target: a huge delta_scale overflowed i32.
        const CRASH: [u8; 32] = [
            0xa7, 0x80, 0x00, 0xff, 0xff, 0xff, 0x0b, 0xef, 0xff, 0xff, 0xff, 0xff, 0xff, 0x2d, 0x00, 0x00, 0x00, 0x00,
            0xff, 0xff, 0xff, 0x00, 0xfd, 0xff, 0xf7, 0x00, 0x27, 0xa7, 0xe7, 0x03, 0x5d, 0xa5,
        ];
        assert_eq!(parse_sps(&CRASH), Err(AvcError::SpsRange("delta_scale")));
    }

    #[test]
    fn record_round_trip() {
        let record = DecoderConfigRecord::build(&SPS_720P_HIGH, &[0x68, 0xeb, 0xe3, 0xcb]).unwrap();
        let parsed = DecoderConfigRecord::parse(&record).unwrap();
        assert_eq!(parsed.nalu_length_size, 4);
        assert_eq!(&parsed.sps[0][..], &SPS_720P_HIGH[..]);
        assert_eq!(&parsed.pps[0][..], &[0x68, 0xeb, 0xe3, 0xcb]);
        assert_eq!(parsed.profile_idc, 100);
    }

    #[test]
    fn record_truncated() {
        let record = DecoderConfigRecord::build(&SPS_720P_HIGH, &[0x68, 0xeb]).unwrap();
        for n in 0..record.len() - 1 {
            assert!(DecoderConfigRecord::parse(&record.slice(..n)).is_err(), "len {n}");
        }
    }

    #[test]
    fn avcc_annexb_round_trip() {
        let avcc = [0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 3, 0x41, 0, 1];
        let annexb = avcc_to_annexb(&avcc, 4).unwrap();
        assert_eq!(annexb, vec![0, 0, 0, 1, 0x65, 0xaa, 0, 0, 0, 1, 0x41, 0, 1]);
        assert_eq!(&annexb_to_avcc(&annexb)[..], &avcc[..]);
        assert!(avcc_has_idr(&avcc, 4));
        assert!(avcc_to_annexb(&[0, 0, 0, 9, 1], 4).is_err());
    }
}
