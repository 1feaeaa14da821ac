//! VP9 helpers: a key frame's uncompressed header (VP9 bitstream spec §6.2) read into its
//! profile, bit depth, chroma, colour and picture size, and the VPCodecConfigurationRecord (the
//! vpcC body, "VP Codec ISO Media File Format Binding" §2.2) built from it.

use crate::bits::BitReader;
use bytes::Bytes;

/// What a VP9 key frame's uncompressed header says about the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyframeHeader {
    pub profile: u8,
    pub bit_depth: u8,
    /// VP9 `color_space` (0 unknown, 1 BT.601, 2 BT.709, …, 7 sRGB).
    pub color_space: u8,
    pub full_range: bool,
    pub subsampling_x: bool,
    pub subsampling_y: bool,
    pub width: u32,
    pub height: u32,
}

impl KeyframeHeader {
    /// Reads the header of a frame; `None` for a frame that is not a (shown) key frame or is
    /// too short to tell.
    pub fn parse(frame: &[u8]) -> Option<KeyframeHeader> {
        let mut r = BitReader::new(frame);
        if r.read_bits(2).ok()? != 2 {
            return None; // frame_marker
        }
        let low = r.read_bits(1).ok()?;
        let profile = ((r.read_bits(1).ok()? << 1) | low) as u8;
        if profile == 3 {
            r.skip_bits(1).ok()?; // reserved_zero
        }
        if r.read_bit().ok()? {
            return None; // show_existing_frame
        }
        if r.read_bit().ok()? {
            return None; // frame_type: not a key frame
        }
        r.skip_bits(2).ok()?; // show_frame, error_resilient_mode
        if r.read_bits(24).ok()? != 0x49_83_42 {
            return None; // frame_sync_code
        }
        let bit_depth = match (profile >= 2, profile >= 2 && r.read_bit().ok()?) {
            (false, _) => 8,
            (true, false) => 10,
            (true, true) => 12,
        };
        let color_space = r.read_bits(3).ok()? as u8;
        let (full_range, subsampling_x, subsampling_y) = if color_space != 7 {
            let range = r.read_bit().ok()?;
            if profile == 1 || profile == 3 {
                let (x, y) = (r.read_bit().ok()?, r.read_bit().ok()?);
                r.skip_bits(1).ok()?; // reserved_zero
                (range, x, y)
            } else {
                (range, true, true)
            }
        } else {
            if profile == 1 || profile == 3 {
                r.skip_bits(1).ok()?; // reserved_zero
            }
            (true, false, false)
        };
        let width = r.read_bits(16).ok()? + 1;
        let height = r.read_bits(16).ok()? + 1;
        Some(KeyframeHeader {
            profile,
            bit_depth,
            color_space,
            full_range,
            subsampling_x,
            subsampling_y,
            width,
            height,
        })
    }

    /// The vpcC body for this stream: profile, the level its picture size needs (WebRTC and
    /// the header do not signal one), bit depth, chroma subsampling, range and colour
    /// description, and no codec initialization data.
    pub fn config_record(&self) -> Bytes {
        let chroma = match (self.subsampling_x, self.subsampling_y) {
            (true, true) => 1,  // 4:2:0 colocated
            (true, false) => 2, // 4:2:2
            (false, _) => 3,    // 4:4:4
        };
        // Colour description from color_space: BT.601 → SMPTE 170M, BT.709, sRGB; else unspecified.
        let (primaries, transfer, matrix) = match self.color_space {
            1 => (6, 6, 6),
            2 => (1, 1, 1),
            7 => (1, 13, 0),
            _ => (2, 2, 2),
        };
        let record = [
            self.profile,
            level(self.width, self.height),
            (self.bit_depth << 4) | (chroma << 1) | self.full_range as u8,
            primaries,
            transfer,
            matrix,
            0,
            0,
        ];
        Bytes::copy_from_slice(&record)
    }
}

/// VP9 level (Annex A) for a picture size, as the vpcC `level` (10 × level).
fn level(width: u32, height: u32) -> u8 {
    /// (max luma picture size, level) of VP9 levels 1 to 5.
    const LEVELS: [(u64, u8); 8] = [
        (36_864, 10),
        (73_728, 11),
        (122_880, 20),
        (245_760, 21),
        (552_960, 30),
        (983_040, 31),
        (2_228_224, 40),
        (8_912_896, 50),
    ];
    let size = width as u64 * height as u64;
    LEVELS.iter().find(|(max, _)| size <= *max).map_or(60, |(_, level)| *level)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::VP9_640X360_KEYFRAME_HEAD as LIBVPX_640X360;

    #[test]
    fn key_frame_of_libvpx() {
        let header = KeyframeHeader::parse(&LIBVPX_640X360).expect("a key frame");
        assert_eq!((header.width, header.height), (640, 360));
        assert_eq!((header.profile, header.bit_depth, header.subsampling_x, header.subsampling_y), (0, 8, true, true));
        assert_eq!(header.config_record()[..3], [0, 21, 0x82]);
    }

    #[test]
    fn inter_and_short_frames_are_not_key_frames() {
        assert_eq!(KeyframeHeader::parse(&[0x86, 1, 2]), None, "frame_type 1");
        assert_eq!(KeyframeHeader::parse(&[0x82]), None);
        assert_eq!(KeyframeHeader::parse(&[]), None);
        for n in 0..LIBVPX_640X360.len() {
            let _ = KeyframeHeader::parse(&LIBVPX_640X360[..n]);
        }
    }
}
