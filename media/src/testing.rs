//! Fixtures for tests of Rill's crates (feature `testing`): codec configurations of real
//! encoder output and synthetic live streams.

use crate::avc::DecoderConfigRecord;
use crate::track::{AacConfig, AvcConfig, CodecConfig, Tracks};
use bytes::Bytes;

/// SPS of `ffmpeg -f lavfi testsrc2=size=1280x720:rate=30 -c:v libx264 -profile:v high`.
pub const SPS_720P_HIGH: [u8; 25] = [
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03,
    0x00, 0x80, 0x00, 0x00, 0x1e, 0x07,
];

/// A PPS to go with it.
pub const PPS: [u8; 4] = [0x68, 0xeb, 0xe3, 0xcb];

/// 720p30 H.264 and (optionally) 48 kHz stereo AAC-LC.
pub fn avc_aac_tracks(audio: bool) -> Tracks {
    let record = DecoderConfigRecord::build(&SPS_720P_HIGH, &PPS).expect("valid SPS/PPS");
    Tracks {
        video: Some(CodecConfig::Avc(AvcConfig::from_record(record).expect("valid record"))),
        audio: audio
            .then(|| CodecConfig::Aac(AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).expect("valid ASC"))),
        encoder: None,
    }
}
