//! Codec configuration of a stream's tracks: what a packager or player must know
//! before the first frame (decoder config records, resolution, sample rate).

use crate::aac::{AacError, AudioSpecificConfig};
use crate::avc::{parse_sps, AvcError, DecoderConfigRecord, SpsInfo};
use bytes::Bytes;

/// H.264 decoder configuration (the AVCDecoderConfigurationRecord) and what its SPS says.
#[derive(Clone, Debug, PartialEq)]
pub struct AvcConfig {
    pub record: Bytes,
    pub nalu_length_size: u8,
    pub sps: SpsInfo,
}

impl AvcConfig {
    pub fn from_record(record: Bytes) -> Result<Self, AvcError> {
        let parsed = DecoderConfigRecord::parse(&record)?;
        let sps = parse_sps(&parsed.sps[0])?;
        Ok(AvcConfig { nalu_length_size: parsed.nalu_length_size, sps, record })
    }
}

/// AAC decoder configuration (the AudioSpecificConfig).
#[derive(Clone, Debug, PartialEq)]
pub struct AacConfig {
    pub asc: Bytes,
    pub info: AudioSpecificConfig,
}

impl AacConfig {
    pub fn from_asc(asc: Bytes) -> Result<Self, AacError> {
        Ok(AacConfig { info: AudioSpecificConfig::parse(&asc)?, asc })
    }
}

/// A track's codec and its decoder configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum CodecConfig {
    Avc(AvcConfig),
    Aac(AacConfig),
    /// HEVCDecoderConfigurationRecord (hvcC), for Enhanced RTMP and SRT ingest.
    Hevc {
        record: Bytes,
    },
    /// AV1CodecConfigurationRecord (av1C).
    Av1 {
        record: Bytes,
    },
    /// VPCodecConfigurationRecord (the body of vpcC after its version and flags), for Enhanced
    /// RTMP and WebRTC, and the picture size (which vpcC does not carry) from a key frame's
    /// header, `None` until one was seen.
    Vp9 {
        record: Bytes,
        size: Option<(u32, u32)>,
    },
    /// VP8, as carried by WebRTC (WHIP). No ISO-BMFF or FLV binding is used for it here, so it
    /// is not packaged for LL-HLS/DASH or sent over HTTP-FLV; only the picture size (from the
    /// last key frame's header, 0 when not yet known) is kept.
    Vp8 {
        width: u16,
        height: u16,
    },
    /// Opus, as carried by WebRTC.
    Opus {
        channels: u8,
        sample_rate: u32,
    },
}

impl CodecConfig {
    /// Short codec name for APIs and logs.
    pub fn name(&self) -> &'static str {
        match self {
            CodecConfig::Avc(_) => "h264",
            CodecConfig::Aac(_) => "aac",
            CodecConfig::Hevc { .. } => "h265",
            CodecConfig::Av1 { .. } => "av1",
            CodecConfig::Vp9 { .. } => "vp9",
            CodecConfig::Vp8 { .. } => "vp8",
            CodecConfig::Opus { .. } => "opus",
        }
    }

    /// The RFC 6381 `codecs` string (for HLS `CODECS` and DASH `codecs`), where known.
    pub fn rfc6381(&self) -> Option<String> {
        match self {
            CodecConfig::Avc(c) => {
                Some(format!("avc1.{:02x}{:02x}{:02x}", c.sps.profile_idc, c.sps.constraint_flags, c.sps.level_idc))
            }
            CodecConfig::Aac(c) => Some(format!("mp4a.40.{}", c.info.object_type)),
            CodecConfig::Opus { .. } => Some("opus".into()),
            CodecConfig::Hevc { record } => hevc_codecs(record),
            CodecConfig::Av1 { record } => av1_codecs(record),
            CodecConfig::Vp9 { record, .. } => vp9_codecs(record),
            CodecConfig::Vp8 { .. } => Some("vp8".into()),
        }
    }

    /// The picture size (width, height) of a video track, where its configuration gives one:
    /// H.264 and HEVC from the SPS (less the cropping window), AV1 from the sequence header in
    /// av1C (its maximum frame size), VP8 and VP9 from the last key frame's header.
    pub fn picture_size(&self) -> Option<(u32, u32)> {
        match self {
            CodecConfig::Avc(c) => Some((c.sps.width, c.sps.height)),
            CodecConfig::Hevc { record } => crate::hevc::record_picture_size(record).ok(),
            CodecConfig::Av1 { record } => crate::av1::record_picture_size(record).ok(),
            CodecConfig::Vp9 { size, .. } => *size,
            CodecConfig::Vp8 { width, height } => {
                (*width > 0 && *height > 0).then_some((*width as u32, *height as u32))
            }
            CodecConfig::Aac(_) | CodecConfig::Opus { .. } => None,
        }
    }
}

/// `hvc1.<space+profile>.<compatibility>.<tier+level>.<constraints>` (ISO/IEC 14496-15 Annex E)
/// from the head of an HEVCDecoderConfigurationRecord.
fn hevc_codecs(record: &[u8]) -> Option<String> {
    let head = record.get(..13)?;
    let space = ["", "A", "B", "C"][(head[1] >> 6) as usize];
    let tier = if head[1] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = head[1] & 0x1f;
    // The compatibility flags are written bit-reversed, in hex without leading zeros.
    let compatibility = u32::from_be_bytes([head[2], head[3], head[4], head[5]]).reverse_bits();
    let mut constraints: Vec<u8> = head[6..12].to_vec();
    while constraints.last() == Some(&0) {
        constraints.pop();
    }
    let mut codecs = format!("hvc1.{space}{profile}.{compatibility:X}.{tier}{}", head[12]);
    for byte in constraints {
        codecs.push_str(&format!(".{byte:X}"));
    }
    Some(codecs)
}

/// `vp09.<profile>.<level>.<bit depth>` (VP9 ISO-BMFF binding §"Codecs Parameter String") from a
/// VPCodecConfigurationRecord: profile, level, then bit depth in the top 4 bits.
fn vp9_codecs(record: &[u8]) -> Option<String> {
    let [profile, level, depth_chroma, ..] = record[..] else { return None };
    Some(format!("vp09.{profile:02}.{level:02}.{:02}", depth_chroma >> 4))
}

/// `av01.<profile>.<level><tier>.<bit depth>` (AV1 codec ISO-BMFF binding §5) from an
/// AV1CodecConfigurationRecord.
fn av1_codecs(record: &[u8]) -> Option<String> {
    let [marker, profile_level, flags, ..] = record[..] else { return None };
    if marker != 0x81 {
        return None;
    }
    let tier = if flags & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (flags & 0x40 != 0, flags & 0x20 != 0) {
        (true, true) => 12,
        (true, false) => 10,
        _ => 8,
    };
    Some(format!("av01.{}.{:02}{tier}.{depth:02}", profile_level >> 5, profile_level & 0x1f))
}

/// The tracks of a live stream. Track ids are [`crate::TrackId::VIDEO`] and [`crate::TrackId::AUDIO`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tracks {
    pub video: Option<CodecConfig>,
    pub audio: Option<CodecConfig>,
    /// The encoder named in the publisher's metadata (e.g. "obs-output module", "Lavf59.27.100").
    pub encoder: Option<String>,
}

impl Tracks {
    /// Width and height of the video track, where known ([`CodecConfig::picture_size`]).
    pub fn resolution(&self) -> Option<(u32, u32)> {
        self.video.as_ref()?.picture_size()
    }
}

#[cfg(test)]
mod codecs_tests {
    use super::*;

    #[test]
    fn hevc_and_av1_codecs_strings() {
        // Main profile, Main tier, level 3.1 (93), progressive + frame-only constraint flags.
        let hvcc = [1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xf0];
        assert_eq!(
            CodecConfig::Hevc { record: Bytes::copy_from_slice(&hvcc) }.rfc6381().as_deref(),
            Some("hvc1.1.6.L93.90")
        );
        // Main profile, level 4.0 (seq_level_idx 8), Main tier, 8-bit.
        let av1c = [0x81, 0x08, 0x0c, 0x00];
        assert_eq!(
            CodecConfig::Av1 { record: Bytes::copy_from_slice(&av1c) }.rfc6381().as_deref(),
            Some("av01.0.08M.08")
        );
        assert_eq!(CodecConfig::Hevc { record: Bytes::from_static(&[1, 2]) }.rfc6381(), None);
        assert_eq!(CodecConfig::Av1 { record: Bytes::from_static(&[0, 8, 12]) }.rfc6381(), None);
        // Profile 0, level 3.1, 8-bit 4:2:0.
        let vpcc = [0, 31, 0x82, 0x02, 0x02, 0x02, 0, 0];
        assert_eq!(
            CodecConfig::Vp9 { record: Bytes::copy_from_slice(&vpcc), size: None }.rfc6381().as_deref(),
            Some("vp09.00.31.08")
        );
    }

    #[test]
    fn vp8_is_named_but_not_packaged_or_sent_over_flv() {
        let vp8 = CodecConfig::Vp8 { width: 640, height: 360 };
        assert_eq!((vp8.name(), vp8.rfc6381().as_deref()), ("vp8", Some("vp8")));
        let tracks = Tracks { video: Some(vp8.clone()), audio: None, encoder: None };
        assert_eq!(tracks.resolution(), Some((640, 360)));
        let err = crate::cmaf::fmp4::init_segment(1, &vp8).unwrap_err();
        assert!(err.to_string().contains("VP8 video is not packaged for LL-HLS/DASH"), "{err}");
        assert!(!crate::flv::carries(&vp8));
        assert!(crate::flv::sequence_headers(&tracks, 0).is_empty());
    }

    #[test]
    fn picture_size_of_every_video_codec() {
        use crate::testing;
        let avc = testing::avc_aac_tracks(false).video.unwrap();
        assert_eq!(avc.picture_size(), Some((1280, 720)));
        assert_eq!(testing::hevc_426x240().picture_size(), Some((426, 240)));
        assert_eq!(testing::av1_640x360().picture_size(), Some((640, 360)));
        assert_eq!(testing::vp9_640x360().picture_size(), Some((640, 360)));
        assert_eq!(CodecConfig::Vp8 { width: 0, height: 0 }.picture_size(), None);
        let unknown_vp9 = CodecConfig::Vp9 { record: Bytes::from_static(&[0, 31, 0x82, 2, 2, 2, 0, 0]), size: None };
        assert_eq!(unknown_vp9.picture_size(), None);
        assert_eq!(CodecConfig::Hevc { record: Bytes::from_static(&[1, 2]) }.picture_size(), None);
        assert_eq!(CodecConfig::Opus { channels: 2, sample_rate: 48_000 }.picture_size(), None);
    }
}
