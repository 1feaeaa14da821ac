//! MPEG-TS (ISO/IEC 13818-1) for SRT: a sans-IO [`demux::TsDemuxer`] (188-byte packets in →
//! [`Tracks`](crate::Tracks) and [`Frame`](crate::Frame)s out) and a [`mux::TsMuxer`] (Frames →
//! packets with PAT/PMT and PES). The demuxer is the one place 33-bit PTS/DTS are unwrapped
//! (with [`crate::time::Unwrapper33`]).

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
    fn crc_of_a_known_pat() {
        // PAT of ffmpeg's mpegts muxer: program 1 → PMT PID 0x1000.
        let pat = [0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00];
        assert_eq!(crc32(&pat), 0x2ab1_04b2);
    }
}
