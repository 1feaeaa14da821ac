//! H.265/HEVC helpers: the HEVCDecoderConfigurationRecord (hvcC, ISO/IEC 14496-15 §8.3.3) built
//! from VPS/SPS/PPS NAL units, read back into its parameter sets, and the picture size its SPS
//! gives.

use crate::bits::{rbsp_from_ebsp, BitReader, BitsExhausted};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum HevcError {
    #[error("HEVC SPS too short for its profile_tier_level ({0} bytes)")]
    SpsTooShort(usize),
    #[error("HEVC parameter set of {0} bytes is too long")]
    TooLong(usize),
    #[error("hvcC record truncated")]
    Truncated,
    #[error("hvcC record has no SPS")]
    NoSps,
    #[error("HEVC SPS ended early: {0}")]
    SpsTruncated(#[from] BitsExhausted),
    #[error("HEVC SPS value out of range: {0}")]
    SpsRange(&'static str),
}

/// NAL unit types used by the server.
pub mod nal {
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    pub const AUD: u8 = 35;
    /// IRAP pictures (BLA, IDR, CRA): 16..=23.
    pub fn is_irap(t: u8) -> bool {
        (16..=23).contains(&t)
    }
}

/// The NAL unit type of an HEVC NAL unit (two-byte header).
pub fn nal_type(nalu: &[u8]) -> Option<u8> {
    nalu.first().map(|b| (b >> 1) & 0x3f)
}

/// Builds an hvcC with 4-byte NAL lengths, one VPS, SPS and PPS (4:2:0, 8-bit assumed for the
/// informative fields; decoders take the real values from the SPS).
pub fn build_record(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Bytes, HevcError> {
    // SPS: 2-byte NAL header, then 4 bits vps id, 3 bits max_sub_layers, 1 bit nesting, then the
    // 12-byte general profile_tier_level, exactly the bytes hvcC repeats.
    let rbsp = rbsp_from_ebsp(sps.get(2..).unwrap_or_default());
    if rbsp.len() < 13 {
        return Err(HevcError::SpsTooShort(sps.len()));
    }
    let sub_layers = ((rbsp[0] >> 1) & 0x07) + 1;
    let mut out = BytesMut::with_capacity(23 + 3 * 5 + vps.len() + sps.len() + pps.len());
    out.put_u8(1);
    out.put_slice(&rbsp[1..13]);
    out.put_slice(&[0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0x00, 0x00]);
    out.put_u8((sub_layers.min(7) << 3) | ((rbsp[0] & 0x01) << 2) | 0x03);
    out.put_u8(3);
    for (t, set) in [(nal::VPS, vps), (nal::SPS, sps), (nal::PPS, pps)] {
        let len = u16::try_from(set.len()).map_err(|_| HevcError::TooLong(set.len()))?;
        out.put_u8(0x80 | t);
        out.put_u16(1);
        out.put_u16(len);
        out.put_slice(set);
    }
    Ok(out.freeze())
}

/// The parameter sets of an hvcC, in record order, and its NAL length size.
pub fn record_nalus(record: &[u8]) -> Result<(u8, Vec<&[u8]>), HevcError> {
    let head = record.get(..23).ok_or(HevcError::Truncated)?;
    let length_size = (head[21] & 0x03) + 1;
    let mut pos = 23;
    let mut sets = Vec::new();
    for _ in 0..head[22] {
        let h = record.get(pos..pos + 3).ok_or(HevcError::Truncated)?;
        pos += 3;
        for _ in 0..u16::from_be_bytes([h[1], h[2]]) {
            let l = record.get(pos..pos + 2).ok_or(HevcError::Truncated)?;
            let len = u16::from_be_bytes([l[0], l[1]]) as usize;
            sets.push(record.get(pos + 2..pos + 2 + len).ok_or(HevcError::Truncated)?);
            pos += 2 + len;
        }
    }
    Ok((length_size, sets))
}

/// The displayed picture size (width, height) of an HEVC SPS NAL unit (H.265 §7.3.2.2: the
/// coded size minus the conformance window), at most 16384 either way.
pub fn sps_picture_size(sps: &[u8]) -> Result<(u32, u32), HevcError> {
    let rbsp = rbsp_from_ebsp(sps.get(2..).ok_or(HevcError::SpsTooShort(sps.len()))?);
    let mut r = BitReader::new(&rbsp);
    r.skip_bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.read_bits(3)? as usize;
    r.skip_bits(1)?; // sps_temporal_id_nesting_flag
    r.skip_bits(96)?; // general profile (88 bits) and level (8 bits)
    let mut present = [(false, false); 7];
    for p in present.iter_mut().take(max_sub_layers_minus1) {
        *p = (r.read_bit()?, r.read_bit()?);
    }
    if max_sub_layers_minus1 > 0 {
        r.skip_bits(2 * (8 - max_sub_layers_minus1))?; // reserved_zero_2bits
    }
    for (profile, level) in present.iter().take(max_sub_layers_minus1) {
        r.skip_bits(if *profile { 88 } else { 0 } + if *level { 8 } else { 0 })?;
    }
    r.read_ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.read_ue()?;
    if chroma_format_idc > 3 {
        return Err(HevcError::SpsRange("chroma_format_idc"));
    }
    let separate_colour_plane = chroma_format_idc == 3 && r.read_bit()?;
    let width = r.read_ue()? as u64;
    let height = r.read_ue()? as u64;
    let (mut crop_w, mut crop_h) = (0u64, 0u64);
    if r.read_bit()? {
        // conformance_window_flag: offsets in chroma sample units (ChromaArrayType).
        let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        let (left, right) = (r.read_ue()? as u64, r.read_ue()? as u64);
        let (top, bottom) = (r.read_ue()? as u64, r.read_ue()? as u64);
        (crop_w, crop_h) = (sub_w * (left + right), sub_h * (top + bottom));
    }
    let size = |full: u64, crop: u64, what| {
        full.checked_sub(crop).filter(|v| (1..=16384).contains(v)).map(|v| v as u32).ok_or(HevcError::SpsRange(what))
    };
    Ok((size(width, crop_w, "width")?, size(height, crop_h, "height")?))
}

/// The picture size given by the (first) SPS of an hvcC.
pub fn record_picture_size(record: &[u8]) -> Result<(u32, u32), HevcError> {
    let (_, sets) = record_nalus(record)?;
    let sps = sets.into_iter().find(|n| nal_type(n) == Some(nal::SPS)).ok_or(HevcError::NoSps)?;
    sps_picture_size(sps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let vps = [0x40, 0x01, 0x0c, 0x01];
        let sps = [0x42, 0x01, 0x01, 0x01, 0x60, 0, 0, 0x03, 0, 0, 0x03, 0, 0, 0x03, 0, 0, 0x03, 0, 0x5d, 0xa0];
        let pps = [0x44, 0x01, 0xc1];
        let record = build_record(&vps, &sps, &pps).unwrap();
        assert_eq!(record[1], 0x01, "general_profile_idc Main");
        assert_eq!(record[12], 0x5d, "general_level_idc 3.1");
        let (len, sets) = record_nalus(&record).unwrap();
        assert_eq!(len, 4);
        assert_eq!(sets, vec![&vps[..], &sps[..], &pps[..]]);
        assert!(build_record(&vps, &sps[..6], &pps).is_err());
        for n in 0..record.len() - 1 {
            let _ = record_nalus(&record[..n]);
        }
    }

    #[test]
    fn picture_size_of_x265_output_less_its_conformance_window() {
        use crate::testing::{HEVC_426X240_PPS, HEVC_426X240_SPS, HEVC_426X240_VPS};
        assert_eq!(sps_picture_size(&HEVC_426X240_SPS), Ok((426, 240)));
        let record = build_record(&HEVC_426X240_VPS, &HEVC_426X240_SPS, &HEVC_426X240_PPS).unwrap();
        assert_eq!(record_picture_size(&record), Ok((426, 240)));
        for n in 0..HEVC_426X240_SPS.len() {
            let size = sps_picture_size(&HEVC_426X240_SPS[..n]);
            assert!(matches!(size, Ok((426, 240)) | Err(_)), "{n} bytes: {size:?}");
        }
        assert_eq!(record_picture_size(&record[..30]), Err(HevcError::Truncated));
    }

    #[test]
    fn absurd_sizes_are_errors_not_overflows() {
        // The x265 SPS up to the picture size, then width and height 2³²−2 (ue with 31 leading
        // zeros) and a conformance window as large: out of range, never an overflow.
        let mut sps = HEVC_426X240_HEAD.to_vec();
        sps.extend_from_slice(&[0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff]);
        assert!(sps_picture_size(&sps).is_err());
    }

    /// The x265 SPS through `chroma_format_idc` (4:2:0), byte-aligned by its NAL header.
    const HEVC_426X240_HEAD: [u8; 19] = [
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c,
        0xa0,
    ];
}
