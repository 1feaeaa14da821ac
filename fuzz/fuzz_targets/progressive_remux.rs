//! Arbitrary bytes as a stored CMAF segment into `cmaf::progressive` (what a download reads
//! back from storage): `walk_segment` never panics and reports only sample data inside the
//! input; a progressive layout built from what it found (with a real H.264 init segment)
//! covers exactly its header and those bytes, and any range of it maps back into the input.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rill_media::cmaf::fmp4;
use rill_media::cmaf::progressive::{init_defaults, walk_segment, Part, Progressive, TrackInput};
use rill_media::testing::avc_aac_tracks;

fuzz_target!(|data: &[u8]| {
    let init = fmp4::init_segment(1, avc_aac_tracks(true).video.as_ref().unwrap()).unwrap();
    let defaults = init_defaults(&init).unwrap();
    let read = |r: std::ops::Range<u64>| Ok(Bytes::copy_from_slice(&data[r.start as usize..r.end as usize]));
    let Ok(fragments) = walk_segment(0, data.len() as u64, defaults, read) else { return };
    for fragment in &fragments {
        assert!(fragment.data.start <= fragment.data.end && fragment.data.end <= data.len() as u64);
        assert!(!fragment.samples.is_empty());
    }
    if fragments.is_empty() {
        return;
    }
    let Ok(progressive) = Progressive::build(&[TrackInput { init, fragments: fragments.clone() }]) else { return };
    let payload: u64 = fragments.iter().map(|f| f.data.end - f.data.start).sum();
    assert_eq!(progressive.len, progressive.header.len() as u64 + payload);
    let middle = progressive.len / 2;
    let mut covered = 0;
    for part in progressive.pieces_in(middle / 2..middle + 7) {
        covered += match part {
            Part::Header(r) => r.len() as u64,
            Part::Source(p) => {
                assert!(p.range.end <= data.len() as u64);
                p.range.end - p.range.start
            }
        };
    }
    assert_eq!(covered, (middle + 7).min(progressive.len) - middle / 2);
});
