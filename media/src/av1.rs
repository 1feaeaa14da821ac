//! AV1 helpers: LEB128 sizes, OBU headers, the sequence header OBU (AV1 spec §5.5) read into
//! what the AV1CodecConfigurationRecord (av1C, "AV1 Codec ISO Media File Format Binding" §2.3)
//! and players need, that record built from a sequence header, and the picture size read back
//! from a record's `configOBUs`.

use crate::bits::{BitReader, BitsExhausted};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Av1Error {
    #[error("malformed OBU")]
    BadObu,
    #[error("OBU type {0} is not a sequence header")]
    NotSequenceHeader(u8),
    #[error("sequence header ended early: {0}")]
    Truncated(#[from] BitsExhausted),
    #[error("av1C record is malformed")]
    BadRecord,
    #[error("av1C record has no sequence header OBU")]
    NoSequenceHeader,
}

/// OBU types used here.
pub mod obu_type {
    pub const SEQUENCE_HEADER: u8 = 1;
    pub const TEMPORAL_DELIMITER: u8 = 2;
    pub const PADDING: u8 = 15;
}

/// An unsigned LEB128 value and its length (at most 8 bytes, as AV1 allows).
pub fn leb128(p: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in p.iter().take(8).enumerate() {
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Appends `v` as unsigned LEB128.
pub fn put_leb128(out: &mut BytesMut, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.put_u8(b);
            return;
        }
        out.put_u8(b | 0x80);
    }
}

/// One OBU at the front of `data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obu<'a> {
    pub obu_type: u8,
    /// The header (one byte, two with the extension).
    pub header: &'a [u8],
    /// The payload (up to the size field's end, or to the end of `data` without one).
    pub payload: &'a [u8],
    /// Bytes of `data` the OBU takes.
    pub len: usize,
}

impl<'a> Obu<'a> {
    /// Reads the OBU at the front of `data` (forbidden bit clear; size field optional).
    pub fn parse(data: &'a [u8]) -> Result<Obu<'a>, Av1Error> {
        let first = *data.first().ok_or(Av1Error::BadObu)?;
        if first & 0x80 != 0 {
            return Err(Av1Error::BadObu); // obu_forbidden_bit
        }
        let header_len = if first & 0x04 != 0 { 2 } else { 1 };
        let header = data.get(..header_len).ok_or(Av1Error::BadObu)?;
        let rest = &data[header_len..];
        let (payload, len) = if first & 0x02 != 0 {
            let (size, k) = leb128(rest).ok_or(Av1Error::BadObu)?;
            let size = usize::try_from(size).map_err(|_| Av1Error::BadObu)?;
            let end = k.checked_add(size).ok_or(Av1Error::BadObu)?;
            (rest.get(k..end).ok_or(Av1Error::BadObu)?, header_len + end)
        } else {
            (rest, data.len())
        };
        Ok(Obu { obu_type: (first >> 3) & 0x0f, header, payload, len })
    }
}

/// What a sequence header says about the stream (the fields av1C repeats, and the size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SequenceHeader {
    pub profile: u8,
    /// `seq_level_idx` of the first operating point.
    pub level: u8,
    /// `seq_tier` of the first operating point.
    pub tier: u8,
    pub high_bitdepth: bool,
    pub twelve_bit: bool,
    pub monochrome: bool,
    pub subsampling_x: bool,
    pub subsampling_y: bool,
    pub chroma_sample_position: u8,
    /// `max_frame_width_minus_1 + 1`.
    pub max_width: u32,
    /// `max_frame_height_minus_1 + 1`.
    pub max_height: u32,
}

impl SequenceHeader {
    /// Reads a sequence header OBU's payload (AV1 spec §5.5.1).
    pub fn parse(payload: &[u8]) -> Result<SequenceHeader, Av1Error> {
        let mut r = BitReader::new(payload);
        let profile = r.read_bits(3)? as u8;
        r.skip_bits(1)?; // still_picture
        let reduced = r.read_bit()?;
        let (level, tier);
        if reduced {
            level = r.read_bits(5)? as u8;
            tier = 0;
        } else {
            let mut decoder_model = false;
            let mut buffer_delay_len = 0;
            if r.read_bit()? {
                // timing_info: num_units_in_display_tick, time_scale, equal_picture_interval
                r.skip_bits(64)?;
                if r.read_bit()? {
                    r.read_ue()?; // num_ticks_per_picture_minus_1: uvlc(), read like ue(v)
                }
                decoder_model = r.read_bit()?;
                if decoder_model {
                    buffer_delay_len = r.read_bits(5)? + 1;
                    r.skip_bits(32)?; // num_units_in_decoding_tick
                    r.skip_bits(10)?; // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
                }
            }
            let initial_display_delay = r.read_bit()?;
            let points = r.read_bits(5)? + 1;
            let (mut first_level, mut first_tier) = (0, 0);
            for i in 0..points {
                r.skip_bits(12)?; // operating_point_idc
                let l = r.read_bits(5)? as u8;
                let t = if l > 7 { r.read_bits(1)? as u8 } else { 0 };
                if decoder_model && r.read_bit()? {
                    r.skip_bits(2 * buffer_delay_len as usize + 1)?; // decoder and encoder buffer delay, low_delay_mode
                }
                if initial_display_delay && r.read_bit()? {
                    r.skip_bits(4)?;
                }
                if i == 0 {
                    (first_level, first_tier) = (l, t);
                }
            }
            level = first_level;
            tier = first_tier;
        }
        let width_bits = r.read_bits(4)? + 1;
        let height_bits = r.read_bits(4)? + 1;
        let max_width = r.read_bits(width_bits)? + 1;
        let max_height = r.read_bits(height_bits)? + 1;
        if !reduced && r.read_bit()? {
            r.skip_bits(7)?; // delta_frame_id_length_minus_2, additional_frame_id_length_minus_1
        }
        r.skip_bits(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
        if !reduced {
            r.skip_bits(4)?; // interintra, masked compound, warped motion, dual filter
            let order_hint = r.read_bit()?;
            if order_hint {
                r.skip_bits(2)?; // jnt_comp, ref_frame_mvs
            }
            let force_screen_content = if r.read_bit()? { 2 } else { r.read_bits(1)? };
            if force_screen_content > 0 && !r.read_bit()? {
                r.skip_bits(1)?; // seq_force_integer_mv
            }
            if order_hint {
                r.skip_bits(3)?; // order_hint_bits_minus_1
            }
        }
        r.skip_bits(3)?; // superres, cdef, restoration
        let high_bitdepth = r.read_bit()?;
        let twelve_bit = profile == 2 && high_bitdepth && r.read_bit()?;
        let monochrome = profile != 1 && r.read_bit()?;
        let (mut cp, mut tc, mut mc) = (2, 2, 2);
        if r.read_bit()? {
            (cp, tc, mc) = (r.read_bits(8)?, r.read_bits(8)?, r.read_bits(8)?);
        }
        let srgb = cp == 1 && tc == 13 && mc == 0;
        let (subsampling_x, subsampling_y) = if monochrome {
            r.skip_bits(1)?; // color_range
            (true, true)
        } else if srgb {
            (false, false)
        } else {
            r.skip_bits(1)?; // color_range
            match profile {
                0 => (true, true),
                1 => (false, false),
                _ if twelve_bit => {
                    let x = r.read_bit()?;
                    (x, x && r.read_bit()?)
                }
                _ => (true, false),
            }
        };
        let chroma_sample_position =
            if !monochrome && !srgb && subsampling_x && subsampling_y { r.read_bits(2)? as u8 } else { 0 };
        Ok(SequenceHeader {
            profile,
            level,
            tier,
            high_bitdepth,
            twelve_bit,
            monochrome,
            subsampling_x,
            subsampling_y,
            chroma_sample_position,
            max_width,
            max_height,
        })
    }
}

/// The av1C for a sequence header OBU (written with its size field), which becomes its
/// `configOBUs`.
pub fn config_record(sequence_header_obu: &[u8]) -> Result<Bytes, Av1Error> {
    let obu = Obu::parse(sequence_header_obu)?;
    if obu.obu_type != obu_type::SEQUENCE_HEADER {
        return Err(Av1Error::NotSequenceHeader(obu.obu_type));
    }
    let s = SequenceHeader::parse(obu.payload)?;
    let mut record = BytesMut::with_capacity(4 + sequence_header_obu.len());
    record.put_u8(0x81); // marker, version 1
    record.put_u8((s.profile << 5) | s.level);
    record.put_u8(
        s.tier << 7
            | (s.high_bitdepth as u8) << 6
            | (s.twelve_bit as u8) << 5
            | (s.monochrome as u8) << 4
            | (s.subsampling_x as u8) << 3
            | (s.subsampling_y as u8) << 2
            | s.chroma_sample_position,
    );
    record.put_u8(0); // initial_presentation_delay not given
    record.extend_from_slice(sequence_header_obu);
    Ok(record.freeze())
}

/// The sequence header among an av1C's `configOBUs`.
pub fn record_sequence_header(record: &[u8]) -> Result<SequenceHeader, Av1Error> {
    if record.len() < 4 || record[0] != 0x81 {
        return Err(Av1Error::BadRecord);
    }
    let mut obus = &record[4..];
    while !obus.is_empty() {
        let obu = Obu::parse(obus)?;
        if obu.obu_type == obu_type::SEQUENCE_HEADER {
            return SequenceHeader::parse(obu.payload);
        }
        obus = &obus[obu.len..];
    }
    Err(Av1Error::NoSequenceHeader)
}

/// The (maximum) picture size of the stream an av1C describes.
pub fn record_picture_size(record: &[u8]) -> Result<(u32, u32), Av1Error> {
    let s = record_sequence_header(record)?;
    Ok((s.max_width, s.max_height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 20, (1 << 56) - 1] {
            let mut out = BytesMut::new();
            put_leb128(&mut out, v);
            assert_eq!(leb128(&out), Some((v, out.len())));
        }
        assert_eq!(leb128(&[0x80; 9]), None);
    }

    #[test]
    fn malformed_obus_and_records_are_errors() {
        assert_eq!(Obu::parse(&[]), Err(Av1Error::BadObu));
        assert_eq!(Obu::parse(&[0x80]), Err(Av1Error::BadObu));
        assert_eq!(Obu::parse(&[0x0a, 5, 0]), Err(Av1Error::BadObu));
        assert_eq!(config_record(&[0x12, 0]), Err(Av1Error::NotSequenceHeader(2)));
        assert!(matches!(config_record(&[0x0a, 1, 0]), Err(Av1Error::Truncated(_))));
        assert_eq!(record_picture_size(&[0x81, 0, 0, 0]), Err(Av1Error::NoSequenceHeader));
        assert_eq!(record_picture_size(&[0x81, 0]), Err(Av1Error::BadRecord));
    }

    #[test]
    fn libaom_record_gives_its_size_and_is_rebuilt_from_its_sequence_header() {
        use crate::testing::AV1C_640X360;
        assert_eq!(record_picture_size(&AV1C_640X360), Ok((640, 360)));
        let header = record_sequence_header(&AV1C_640X360).unwrap();
        assert_eq!((header.profile, header.level, header.tier, header.high_bitdepth), (0, 1, 0, false));
        assert_eq!(&config_record(&AV1C_640X360[4..]).unwrap()[..], &AV1C_640X360[..]);
        for n in 0..AV1C_640X360.len() {
            assert!(record_picture_size(&AV1C_640X360[..n]).is_err(), "{n} bytes");
        }
    }
}
