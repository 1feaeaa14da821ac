//! Arbitrary bytes as a recorded CMAF segment into `cmaf::scan::scan_fragments` (what crash
//! recovery reads back from disk): it never panics, and the fragments it reports are in order,
//! within the input, and each ends where a prefix of the input cut there reports it too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_media::cmaf::scan::scan_fragments;

fuzz_target!(|data: &[u8]| {
    let fragments = scan_fragments(data);
    let mut previous_end = 0;
    for fragment in &fragments {
        assert!(fragment.end > previous_end && fragment.end <= data.len());
        assert!(fragment.samples > 0);
        previous_end = fragment.end;
    }
    if let Some(last) = fragments.last() {
        // Cutting after the last complete fragment (what recovery does) keeps all of them.
        assert_eq!(scan_fragments(&data[..last.end]), fragments);
    }
});
