//! H.265/HEVC helpers: the HEVCDecoderConfigurationRecord (hvcC, ISO/IEC 14496-15 §8.3.3) built
//! from VPS/SPS/PPS NAL units, and read back into its parameter sets.

use crate::bits::rbsp_from_ebsp;
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
}
