//! AAC AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): the fields a server needs; and the ADTS
//! header (§1.A.2.2) that MPEG-TS carries AAC in, to and from an AudioSpecificConfig.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AacError {
    #[error("AudioSpecificConfig too short ({0} bytes)")]
    TooShort(usize),
    #[error("reserved sampling frequency index {0}")]
    SampleRateIndex(u8),
    #[error("sampling frequency of 0 Hz")]
    ZeroSampleRate,
    #[error("no ADTS syncword")]
    AdtsSync,
    #[error("ADTS frame length {0} shorter than its header")]
    AdtsLength(usize),
    #[error("ADTS cannot carry object type {0} or sample rate {1} Hz")]
    AdtsUnrepresentable(u8, u32),
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

/// A parsed ADTS fixed + variable header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdtsHeader {
    /// Audio object type (profile + 1): 2 = AAC-LC.
    pub object_type: u8,
    pub sample_rate_index: u8,
    pub channels: u8,
    /// Header length: 7, or 9 with a CRC.
    pub header_len: usize,
    /// The whole frame, header included.
    pub frame_len: usize,
}

impl AdtsHeader {
    /// Parses the header at the start of `data` (needs 7 bytes).
    pub fn parse(data: &[u8]) -> Result<AdtsHeader, AacError> {
        if data.len() < 7 {
            return Err(AacError::TooShort(data.len()));
        }
        if data[0] != 0xff || data[1] & 0xf6 != 0xf0 {
            return Err(AacError::AdtsSync);
        }
        let header_len = if data[1] & 0x01 == 0 { 9 } else { 7 };
        let sample_rate_index = (data[2] >> 2) & 0x0f;
        if sample_rate_index as usize >= SAMPLE_RATES.len() {
            return Err(AacError::SampleRateIndex(sample_rate_index));
        }
        let frame_len = (((data[3] & 0x03) as usize) << 11) | ((data[4] as usize) << 3) | (data[5] >> 5) as usize;
        if frame_len < header_len {
            return Err(AacError::AdtsLength(frame_len));
        }
        Ok(AdtsHeader {
            object_type: (data[2] >> 6) + 1,
            sample_rate_index,
            channels: ((data[2] & 0x01) << 2) | (data[3] >> 6),
            header_len,
            frame_len,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        SAMPLE_RATES[self.sample_rate_index as usize]
    }

    /// The two-byte AudioSpecificConfig this header describes.
    pub fn audio_specific_config(&self) -> [u8; 2] {
        let v =
            ((self.object_type as u16) << 11) | ((self.sample_rate_index as u16) << 7) | ((self.channels as u16) << 3);
        v.to_be_bytes()
    }

    /// The 7-byte header (no CRC) for a raw frame of `payload_len` bytes described by `asc`.
    pub fn write(asc: &AudioSpecificConfig, payload_len: usize) -> Result<[u8; 7], AacError> {
        let index = SAMPLE_RATES.iter().position(|&r| r == asc.sample_rate);
        let (Some(index), 1..=4) = (index, asc.object_type) else {
            return Err(AacError::AdtsUnrepresentable(asc.object_type, asc.sample_rate));
        };
        let len = payload_len + 7;
        if len >= 1 << 13 {
            return Err(AacError::AdtsLength(len));
        }
        let profile = asc.object_type - 1;
        let ch = asc.channels & 0x07;
        Ok([
            0xff,
            0xf1,
            (profile << 6) | ((index as u8) << 2) | (ch >> 2),
            ((ch & 0x03) << 6) | ((len >> 11) as u8 & 0x03),
            (len >> 3) as u8,
            ((len as u8 & 0x07) << 5) | 0x1f,
            0xfc,
        ])
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

    #[test]
    fn adts_round_trip() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        let header = AdtsHeader::write(&asc, 100).unwrap();
        let parsed = AdtsHeader::parse(&header).unwrap();
        assert_eq!(parsed.frame_len, 107);
        assert_eq!(parsed.header_len, 7);
        assert_eq!(parsed.sample_rate(), 44100);
        assert_eq!(parsed.audio_specific_config(), [0x12, 0x10]);
        assert_eq!(AdtsHeader::parse(&[0xff, 0xf1, 0, 0, 0, 0, 0]), Err(AacError::AdtsLength(0)));
        assert_eq!(AdtsHeader::parse(&[0x47, 0xf1, 0, 0, 0, 0, 0]), Err(AacError::AdtsSync));
    }
}
