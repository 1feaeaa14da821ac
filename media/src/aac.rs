//! AAC AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): the fields a server needs.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AacError {
    #[error("AudioSpecificConfig too short ({0} bytes)")]
    TooShort(usize),
    #[error("reserved sampling frequency index {0}")]
    SampleRateIndex(u8),
    #[error("sampling frequency of 0 Hz")]
    ZeroSampleRate,
}

const SAMPLE_RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// The decoded head of an AudioSpecificConfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// Audio object type (2 = AAC-LC, 5 = SBR/HE-AAC, 29 = PS).
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

impl AudioSpecificConfig {
    pub fn parse(asc: &[u8]) -> Result<Self, AacError> {
        if asc.len() < 2 {
            return Err(AacError::TooShort(asc.len()));
        }
        let bits = u64::from_be_bytes({
            let mut b = [0u8; 8];
            let n = asc.len().min(8);
            b[..n].copy_from_slice(&asc[..n]);
            b
        });
        let mut pos = 0u32;
        let mut take = |n: u32| {
            let v = (bits >> (64 - pos - n)) & ((1 << n) - 1);
            pos += n;
            v as u32
        };
        let mut object_type = take(5) as u8;
        if object_type == 31 {
            object_type = 32 + take(6) as u8;
        }
        let index = take(4) as u8;
        let sample_rate = if index == 15 {
            if asc.len() < 5 {
                return Err(AacError::TooShort(asc.len()));
            }
            match take(24) {
                0 => return Err(AacError::ZeroSampleRate),
                rate => rate,
            }
        } else {
            *SAMPLE_RATES.get(index as usize).ok_or(AacError::SampleRateIndex(index))?
        };
        let channels = take(4) as u8;
        Ok(AudioSpecificConfig { object_type, sample_rate, channels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_lc_44100_stereo() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(asc, AudioSpecificConfig { object_type: 2, sample_rate: 44100, channels: 2 });
    }

    #[test]
    fn aac_lc_48000_mono() {
        let asc = AudioSpecificConfig::parse(&[0x11, 0x88]).unwrap();
        assert_eq!((asc.sample_rate, asc.channels), (48000, 1));
    }

    #[test]
    fn bad_configs() {
        assert_eq!(AudioSpecificConfig::parse(&[0x12]), Err(AacError::TooShort(1)));
        assert_eq!(AudioSpecificConfig::parse(&[0x16, 0x90]), Err(AacError::SampleRateIndex(13)));
    }
}
