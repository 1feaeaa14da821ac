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
            CodecConfig::Hevc { .. } | CodecConfig::Av1 { .. } => None,
        }
    }
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
    /// Width and height of the video track, when it is AVC.
    pub fn resolution(&self) -> Option<(u32, u32)> {
        match &self.video {
            Some(CodecConfig::Avc(c)) => Some((c.sps.width, c.sps.height)),
            _ => None,
        }
    }
}
