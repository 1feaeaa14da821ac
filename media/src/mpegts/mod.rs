//! MPEG-TS (ISO/IEC 13818-1) for SRT: a sans-IO [`demux::TsDemuxer`] (188-byte packets in →
//! [`Tracks`](crate::Tracks) and [`Frame`](crate::Frame)s out) and a [`mux::TsMuxer`] (Frames →
//! packets with PAT/PMT and PES). [`Timeline`] is the one place 33-bit PTS/DTS are unwrapped.

pub mod demux;
pub mod mux;

pub use demux::{DemuxStats, TsDemuxer, TsEvent};
pub use mux::{MuxError, TsMuxer};

/// Size of a transport stream packet.
pub const PACKET_SIZE: usize = 188;
/// The first byte of every packet.
pub const SYNC_BYTE: u8 = 0x47;

/// `stream_type` values of the PMT Rill reads and writes.
pub mod stream_type {
    pub const AAC_ADTS: u8 = 0x0f;
    pub const AVC: u8 = 0x1b;
    pub const HEVC: u8 = 0x24;
    /// PES private data: Opus, with a registration descriptor `Opus`.
    pub const PRIVATE: u8 = 0x06;
}

const MASK_33: u64 = (1 << 33) - 1;

/// Unwraps 33-bit 90 kHz PTS/DTS values (they wrap every 26.5 hours) into a continuous 64-bit
/// timeline. Steps of less than 2³² ticks (13 h) either way are taken as such, so PTS/DTS of
/// different tracks and B-frame reordering unwrap consistently through one instance.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    last: Option<(u64, i64)>,
}

impl Timeline {
    pub fn unwrap(&mut self, raw: u64) -> i64 {
        let raw = raw & MASK_33;
        let value = match self.last {
            None => raw as i64,
            Some((prev, value)) => {
                let step = raw.wrapping_sub(prev) & MASK_33;
                value + if step >= 1 << 32 { step as i64 - (1 << 33) } else { step as i64 }
            }
        };
        self.last = Some((raw, value));
        value
    }
}

/// CRC-32/MPEG-2 of PSI sections.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= (b as u32) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_33_bit_wrap() {
        let mut t = Timeline::default();
        assert_eq!(t.unwrap(MASK_33 - 10), MASK_33 as i64 - 10);
        assert_eq!(t.unwrap(5), MASK_33 as i64 + 6, "forward across the wrap");
        assert_eq!(t.unwrap(MASK_33 - 20), MASK_33 as i64 - 20, "B-frame step back across it");
        assert_eq!(t.unwrap(3000), MASK_33 as i64 + 3001);
    }

    #[test]
    fn crc_of_a_known_pat() {
        // PAT of ffmpeg's mpegts muxer: program 1 → PMT PID 0x1000.
        let pat = [0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00];
        assert_eq!(crc32(&pat), 0x2ab1_04b2);
    }
}
