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

/// VPS, SPS and PPS of `ffmpeg -f lavfi -i testsrc2=size=426x240 -frames 1 -c:v libx265`
/// (Main, level 2; coded 432x240 with a 6-pixel conformance window on the right).
pub const HEVC_426X240_VPS: [u8; 24] = [
    0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3c, 0x95, 0x98, 0x09,
];
/// See [`HEVC_426X240_VPS`].
pub const HEVC_426X240_SPS: [u8; 43] = [
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0xa0,
    0x0d, 0x88, 0x0f, 0x1c, 0x9e, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a, 0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00,
    0x00, 0x03, 0x00, 0x3c, 0x10,
];
/// See [`HEVC_426X240_VPS`].
pub const HEVC_426X240_PPS: [u8; 7] = [0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

/// The av1C of `ffmpeg -f lavfi -i testsrc2=size=640x360 -frames 1 -c:v libaom-av1` in MP4
/// (Main profile, level 2.1, 8-bit 4:2:0; its sequence header OBU as `configOBUs`).
pub const AV1C_640X360: [u8; 17] =
    [0x81, 0x01, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x0c, 0xc4, 0xff, 0x67, 0x36, 0xbe, 0x40, 0x10];

/// The first bytes of the key frame of `ffmpeg -f lavfi -i testsrc2=size=640x360 -frames 1
/// -c:v libvpx-vp9` (profile 0): its uncompressed header up to the picture size.
pub const VP9_640X360_KEYFRAME_HEAD: [u8; 16] =
    [0x82, 0x49, 0x83, 0x42, 0x00, 0x27, 0xf0, 0x16, 0x70, 0x04, 0x38, 0x24, 0x1c, 0x18, 0x4a, 0x10];

/// The HEVC track of [`HEVC_426X240_SPS`] (hvcC built from its parameter sets).
pub fn hevc_426x240() -> CodecConfig {
    let record = crate::hevc::build_record(&HEVC_426X240_VPS, &HEVC_426X240_SPS, &HEVC_426X240_PPS);
    CodecConfig::Hevc { record: record.expect("valid parameter sets") }
}

/// The AV1 track of [`AV1C_640X360`].
pub fn av1_640x360() -> CodecConfig {
    CodecConfig::Av1 { record: Bytes::from_static(&AV1C_640X360) }
}

/// The VP9 track of [`VP9_640X360_KEYFRAME_HEAD`].
pub fn vp9_640x360() -> CodecConfig {
    let header = crate::vp9::KeyframeHeader::parse(&VP9_640X360_KEYFRAME_HEAD).expect("a key frame");
    CodecConfig::Vp9 { record: header.config_record(), size: Some((header.width, header.height)) }
}

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

/// A synthetic live stream as ffmpeg pushes it: 30 fps H.264 with a keyframe every `gop_ms`
/// (and a constant B-frame reordering of `cts_ms`), interleaved in decode order with 48 kHz
/// AAC frames when `audio` is set.
#[derive(Clone, Copy, Debug)]
pub struct SyntheticStream {
    pub gop_ms: i64,
    pub cts_ms: i64,
    pub audio: bool,
    /// Size of each (zero-filled) video payload.
    pub video_bytes: usize,
}

impl SyntheticStream {
    /// The frames whose video times fall in `from_ms..=to_ms`, each audio frame before the
    /// video frame it does not follow. A frame "arrives" at its decode time.
    pub fn frames(&self, from_ms: i64, to_ms: i64) -> Vec<crate::Frame> {
        use crate::{Frame, MediaTime, TrackId};
        const AAC_FRAME_MS: f64 = 1024.0 / 48.0;
        let mut frames = Vec::new();
        let mut audio_ms = (from_ms as f64 / AAC_FRAME_MS).ceil() * AAC_FRAME_MS;
        let first = (from_ms * 30 + 999) / 1000;
        for n in first.. {
            let video_ms = n * 1000 / 30;
            if video_ms > to_ms {
                break;
            }
            while self.audio && audio_ms <= video_ms as f64 {
                let t = MediaTime::from_millis(audio_ms as i64);
                let payload = Bytes::from_static(&[0x21, 0x10, 0x04]);
                frames.push(Frame { track: TrackId::AUDIO, pts: t, dts: t, keyframe: true, payload });
                audio_ms += AAC_FRAME_MS;
            }
            frames.push(Frame {
                track: TrackId::VIDEO,
                pts: MediaTime::from_millis(video_ms + self.cts_ms),
                dts: MediaTime::from_millis(video_ms),
                keyframe: video_ms % self.gop_ms == 0,
                payload: Bytes::from(vec![0u8; self.video_bytes]),
            });
        }
        frames
    }
}

/// Golden-file check: `actual` must equal the file at `path` (a playlist, an MPD…). With
/// `UPDATE_GOLDEN` set in the environment the file is rewritten first, so a deliberate change
/// is accepted with `UPDATE_GOLDEN=1 cargo test` and reviewed in the diff.
#[track_caller]
pub fn assert_golden(path: &std::path::Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create the golden file's directory");
        }
        std::fs::write(path, actual).expect("write the golden file");
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "golden file {} differs (UPDATE_GOLDEN=1 to accept):\n{}",
        path.display(),
        line_diff(&expected, actual)
    );
}

/// The lines that differ, as `-expected` / `+actual` pairs with their line numbers.
fn line_diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        let (old, new) = (e.get(i), a.get(i));
        if old != new {
            for (sign, line) in [('-', old), ('+', new)] {
                if let Some(line) = line {
                    out.push_str(&format!("{:>4} {sign}{line}\n", i + 1));
                }
            }
        }
    }
    out
}
