//! Arbitrary decoder configurations (AVC record, AAC AudioSpecificConfig, hvcC, av1C, Opus
//! parameters) into `cmaf::fmp4::init_segment`: it returns `Ok` or `Err`, never panics; an
//! init segment it returns parses back (`ftyp` + `moov`) with the track id and the timescale
//! the segmenter will write fragments in.
//!
//! Input: a selector byte, a little-endian `u32` track id, then the record.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mp4_atom::{Decode, Ftyp, Moov};
use rill_media::cmaf::fmp4;
use rill_media::testing::avc_aac_tracks;
use rill_media::{AacConfig, AvcConfig, CodecConfig};

fuzz_target!(|data: &[u8]| {
    let [selector, a, b, c, d, record @ ..] = data else { return };
    let track_id = u32::from_le_bytes([*a, *b, *c, *d]);
    let record = Bytes::copy_from_slice(record);
    let codec = match selector % 6 {
        0 => match AvcConfig::from_record(record) {
            Ok(c) => CodecConfig::Avc(c),
            Err(_) => return,
        },
        1 => match AacConfig::from_asc(record) {
            Ok(c) => CodecConfig::Aac(c),
            Err(_) => return,
        },
        2 => CodecConfig::Hevc { record },
        3 => CodecConfig::Av1 { record },
        4 => {
            let [channels, a, b, c, d, ..] = record[..] else { return };
            CodecConfig::Opus { channels, sample_rate: u32::from_le_bytes([a, b, c, d]) }
        }
        // A parsed SPS next to a record that says something else (the fields are public).
        _ => {
            let Some(CodecConfig::Avc(valid)) = avc_aac_tracks(false).video else { unreachable!() };
            CodecConfig::Avc(AvcConfig { record, ..valid })
        }
    };
    let Ok(init) = fmp4::init_segment(track_id, &codec) else { return };
    let mut rest = &init[..];
    let ftyp = Ftyp::decode(&mut rest).expect("ftyp parses back");
    assert_eq!(ftyp.major_brand, b"iso6".into());
    let moov = Moov::decode(&mut rest).expect("moov parses back");
    assert!(rest.is_empty(), "{} bytes after moov", rest.len());
    let [trak] = &moov.trak[..] else { panic!("{} traks", moov.trak.len()) };
    assert_eq!(trak.tkhd.track_id, track_id);
    let timescale = fmp4::timescale(&codec);
    assert!(timescale > 0, "an init segment with a zero timescale for {codec:?}");
    assert_eq!(trak.mdia.mdhd.timescale, timescale);
    assert_eq!(trak.mdia.minf.stbl.stsd.codecs.len(), 1);
});
