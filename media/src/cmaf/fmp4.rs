//! The boxes of one CMAF track, encoded with `mp4-atom`: the init segment (`ftyp` + `moov`)
//! and fragments (`prft` + `moof` + `mdat`). Each track is its own CMAF track (one `trak`),
//! so the same fragments serve LL-HLS, DASH and recordings.

use crate::track::CodecConfig;
use bytes::{BufMut as _, Bytes, BytesMut};
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{
    Atom, Audio, Av01, Av1c, Avc1, Avcc, Codec, Decode, Dinf, Dops, Dref, Encode, Esds, FixedPoint, Ftyp, Hdlr, Hvc1,
    Hvcc, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd, Opus, Prft, ReferenceTime, Smhd, Stbl, Stsd, Styp,
    Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry, Url, Visual, Vmhd, Vp09, VpcC,
};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a track or fragment cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("invalid {codec} decoder configuration: {reason}")]
    InvalidConfig { codec: &'static str, reason: String },
    /// A codec without a CMAF binding here (VP8): the stream is not packaged for LL-HLS/DASH.
    #[error("{0} video is not packaged for LL-HLS/DASH (no CMAF binding); publish H.264, H.265, VP9 or AV1 for HLS/DASH playback, or watch it over WebRTC")]
    NotPackageable(&'static str),
    #[error("a fragment needs at least one sample")]
    NoSamples,
    #[error("a fragment of {0} bytes is too large")]
    TooLarge(usize),
}

/// `sample_depends_on = 2`: decodable alone (IDR, audio).
const SYNC_SAMPLE: u32 = 0x0200_0000;
/// `sample_depends_on = 1`, `sample_is_non_sync_sample`.
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The clock of a track's media time: 90 kHz for video, the sample rate for audio.
pub fn timescale(codec: &CodecConfig) -> u32 {
    match codec {
        CodecConfig::Aac(c) => c.info.sample_rate,
        CodecConfig::Opus { .. } => 48_000,
        CodecConfig::Avc(_)
        | CodecConfig::Hevc { .. }
        | CodecConfig::Av1 { .. }
        | CodecConfig::Vp9 { .. }
        | CodecConfig::Vp8 { .. } => 90_000,
    }
}

/// Whether the codec is a video codec.
pub fn is_video(codec: &CodecConfig) -> bool {
    matches!(
        codec,
        CodecConfig::Avc(_)
            | CodecConfig::Hevc { .. }
            | CodecConfig::Av1 { .. }
            | CodecConfig::Vp9 { .. }
            | CodecConfig::Vp8 { .. }
    )
}

/// A `styp` that opens every CMAF segment.
pub fn segment_type() -> Bytes {
    let styp = Styp {
        major_brand: b"msdh".into(),
        minor_version: 0,
        compatible_brands: vec![b"msdh".into(), b"msix".into(), b"cmfs".into(), b"cmfl".into()],
    };
    encode(&styp)
}

/// The init segment of a single-track CMAF file: `ftyp` + `moov` with one `trak`.
pub fn init_segment(track_id: u32, codec: &CodecConfig) -> Result<Bytes, Fmp4Error> {
    let timescale = timescale(codec);
    if timescale == 0 {
        // An AudioSpecificConfig may spell out a sample rate of 0; fragments need a clock.
        return Err(Fmp4Error::InvalidConfig { codec: codec.name(), reason: "sample rate 0".into() });
    }
    let video = is_video(codec);
    let (width, height) = dimensions(codec);
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"cmf2".into(), b"mp41".into(), b"dash".into()],
    };
    let sample_entry = sample_entry(codec, width, height)?;
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: FixedPoint::new(1, 0),
            volume: FixedPoint::new(1, 0),
            // All ones (u32::MAX) is the spec's "search for an unused id"; never overflow.
            next_track_id: track_id.saturating_add(1),
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex { track_id, default_sample_description_index: 1, ..Default::default() }],
        }),
        trak: vec![Trak {
            tkhd: Tkhd {
                track_id,
                enabled: true,
                in_movie: true,
                volume: FixedPoint::new(if video { 0 } else { 1 }, 0),
                width: FixedPoint::new(width, 0),
                height: FixedPoint::new(height, 0),
                ..Default::default()
            },
            mdia: Mdia {
                mdhd: Mdhd { timescale, language: "und".into(), ..Default::default() },
                hdlr: Hdlr {
                    handler: if video { b"vide".into() } else { b"soun".into() },
                    name: if video { "Rill video".into() } else { "Rill audio".into() },
                },
                minf: Minf {
                    vmhd: video.then(Vmhd::default),
                    smhd: (!video).then(Smhd::default),
                    dinf: Dinf { dref: Dref { urls: vec![Url { location: String::new() }] } },
                    stbl: Stbl { stsd: Stsd { codecs: vec![sample_entry] }, ..Default::default() },
                    ..Default::default()
                },
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = BytesMut::new();
    out.extend_from_slice(&encode(&ftyp));
    out.extend_from_slice(&encode(&moov));
    Ok(out.freeze())
}

/// The visual sample entry's width and height (0 when the configuration does not give them).
fn dimensions(codec: &CodecConfig) -> (u16, u16) {
    let (width, height) = codec.picture_size().unwrap_or((0, 0));
    (width.min(u16::MAX as u32) as u16, height.min(u16::MAX as u32) as u16)
}

fn sample_entry(codec: &CodecConfig, width: u16, height: u16) -> Result<Codec, Fmp4Error> {
    let visual = Visual { data_reference_index: 1, width, height, ..Default::default() };
    let invalid =
        |reason: mp4_atom::Error| Fmp4Error::InvalidConfig { codec: codec.name(), reason: reason.to_string() };
    Ok(match codec {
        CodecConfig::Vp8 { .. } => return Err(Fmp4Error::NotPackageable("VP8")),
        CodecConfig::Avc(c) => Codec::Avc1(Avc1 {
            visual,
            avcc: decode_record::<Avcc>(b"avcC", &c.record).map_err(invalid)?,
            btrt: None,
            colr: None,
            pasp: None,
            taic: None,
            fiel: None,
        }),
        CodecConfig::Hevc { record } => Codec::Hvc1(Hvc1 {
            visual,
            hvcc: decode_record::<Hvcc>(b"hvcC", record).map_err(invalid)?,
            ..Default::default()
        }),
        CodecConfig::Av1 { record } => Codec::Av01(Av01 {
            visual,
            av1c: decode_record::<Av1c>(b"av1C", record).map_err(invalid)?,
            ..Default::default()
        }),
        CodecConfig::Vp9 { record, .. } => {
            // vpcC is a full box (version 1): the record follows its version and flags.
            let full = [&[1, 0, 0, 0][..], record].concat();
            Codec::Vp09(Vp09 {
                visual,
                vpcc: decode_record::<VpcC>(b"vpcC", &full).map_err(invalid)?,
                ..Default::default()
            })
        }
        CodecConfig::Aac(c) => Codec::Mp4a(Mp4a {
            audio: audio_entry(c.info.channels as u16, c.info.sample_rate),
            esds: Esds {
                es_desc: EsDescriptor {
                    es_id: 0,
                    dec_config: DecoderConfig {
                        object_type_indication: 0x40, // MPEG-4 Audio
                        stream_type: 0x05,            // audio stream
                        up_stream: 0,
                        buffer_size_db: Default::default(),
                        max_bitrate: 0,
                        avg_bitrate: 0,
                        dec_specific: Some(DecoderSpecific {
                            profile: c.info.object_type,
                            freq_index: 0,
                            chan_conf: c.info.channels,
                            raw: c.asc.to_vec(),
                        }),
                    },
                    sl_config: SLConfig {},
                },
            },
            btrt: None,
            taic: None,
        }),
        CodecConfig::Opus { channels, sample_rate } => Codec::Opus(Opus {
            audio: audio_entry(*channels as u16, 48_000),
            dops: Dops {
                output_channel_count: *channels,
                pre_skip: 312,
                input_sample_rate: *sample_rate,
                output_gain: 0,
            },
            btrt: None,
        }),
    })
}

fn audio_entry(channels: u16, sample_rate: u32) -> Audio {
    Audio {
        data_reference_index: 1,
        channel_count: channels,
        sample_size: 16,
        // The 16.16 field cannot hold rates above 65535; the codec config carries the truth.
        sample_rate: FixedPoint::new(sample_rate.min(u16::MAX as u32) as u16, 0),
    }
}

/// Parses a decoder configuration record by wrapping it in its box header.
fn decode_record<T: Atom>(kind: &[u8; 4], record: &[u8]) -> mp4_atom::Result<T> {
    let mut boxed = Vec::with_capacity(record.len() + 8);
    boxed.extend_from_slice(&((record.len() + 8) as u32).to_be_bytes());
    boxed.extend_from_slice(kind);
    boxed.extend_from_slice(record);
    T::decode(&mut boxed.as_slice())
}

fn encode<T: Atom>(atom: &T) -> Bytes {
    let mut out = Vec::new();
    atom.encode(&mut out).expect("encoding into a Vec cannot fail");
    Bytes::from(out)
}

/// One sample of a fragment, in the track's timescale.
#[derive(Clone, Debug)]
pub struct Sample {
    pub duration: u32,
    /// Presentation minus decode time.
    pub composition_offset: i32,
    pub keyframe: bool,
    pub data: Bytes,
}

/// Where a fragment sits on the track's timeline and on the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct FragmentHeader {
    /// `mfhd` sequence number: increases by one per fragment of the track.
    pub sequence: u32,
    pub track_id: u32,
    /// `tfdt`: decode time of the first sample.
    pub base_decode_time: u64,
    /// `prft`: when the first sample reached the server.
    pub producer_time: Option<SystemTime>,
}

/// `prft` (when given) + `moof` + `mdat`. The samples are copied once into the fragment.
pub fn fragment(header: &FragmentHeader, samples: &[Sample]) -> Result<Bytes, Fmp4Error> {
    if samples.is_empty() {
        return Err(Fmp4Error::NoSamples);
    }
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    if payload > u32::MAX as usize - 1024 {
        return Err(Fmp4Error::TooLarge(payload));
    }
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number: header.sequence },
        traf: vec![Traf {
            tfhd: Tfhd { track_id: header.track_id, default_base_is_moof: true, ..Default::default() },
            tfdt: Some(Tfdt { base_media_decode_time: header.base_decode_time }),
            trun: vec![Trun {
                data_offset: Some(0),
                entries: samples
                    .iter()
                    .map(|s| TrunEntry {
                        duration: Some(s.duration),
                        size: Some(s.data.len() as u32),
                        flags: Some(if s.keyframe { SYNC_SAMPLE } else { NON_SYNC_SAMPLE }),
                        cts: Some(s.composition_offset),
                    })
                    .collect(),
            }],
            ..Default::default()
        }],
    };
    // The data offset counts from the start of `moof` to the first sample (after the mdat header).
    let moof_len = encode(&moof).len();
    moof.traf[0].trun[0].data_offset = Some((moof_len + 8) as i32);
    let prft = header.producer_time.map(|at| {
        encode(&Prft {
            reference_track_id: header.track_id,
            ntp_timestamp: ntp_timestamp(at),
            media_time: header.base_decode_time,
            utc_time_semantics: ReferenceTime::Input,
        })
    });
    let mut out = BytesMut::with_capacity(prft.as_ref().map_or(0, |p| p.len()) + moof_len + 8 + payload);
    if let Some(prft) = prft {
        out.extend_from_slice(&prft);
    }
    out.extend_from_slice(&encode(&moof));
    out.put_u32((payload + 8) as u32);
    out.extend_from_slice(b"mdat");
    for sample in samples {
        out.extend_from_slice(&sample.data);
    }
    Ok(out.freeze())
}

/// The wall-clock time of a 64-bit NTP timestamp (times before 1970 become the Unix epoch).
pub fn ntp_to_system_time(ntp: u64) -> SystemTime {
    let seconds = (ntp >> 32).saturating_sub(NTP_UNIX_OFFSET);
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    UNIX_EPOCH + std::time::Duration::new(seconds, nanos as u32)
}

/// A wall-clock time as a 64-bit NTP timestamp (seconds since 1900 . 32-bit fraction).
pub fn ntp_timestamp(at: SystemTime) -> u64 {
    let since_unix = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
    let fraction = ((since_unix.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hevc_av1_and_vp9_init_segments_parse_back() {
        let hvcc = Bytes::from_static(&[
            1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0,
        ]);
        let av1c = Bytes::from_static(&[0x81, 0x08, 0x0c, 0x00]);
        let vpcc = Bytes::from_static(&[0, 31, 0x82, 0x02, 0x02, 0x02, 0, 0]);
        for codec in [
            CodecConfig::Hevc { record: hvcc },
            CodecConfig::Av1 { record: av1c },
            CodecConfig::Vp9 { record: vpcc, size: None },
        ] {
            let init = init_segment(1, &codec).unwrap_or_else(|e| panic!("{}: {e}", codec.name()));
            let mut rest = &init[..];
            Ftyp::decode(&mut rest).unwrap();
            let moov = Moov::decode(&mut rest).unwrap();
            let entry = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0];
            let expected = match codec {
                CodecConfig::Hevc { .. } => matches!(entry, Codec::Hvc1(_)),
                CodecConfig::Av1 { .. } => matches!(entry, Codec::Av01(_)),
                _ => {
                    matches!(entry, Codec::Vp09(v) if v.vpcc.profile == 0 && v.vpcc.level == 31 && v.vpcc.bit_depth == 8)
                }
            };
            assert!(expected, "{}: {entry:?}", codec.name());
        }
    }
}
