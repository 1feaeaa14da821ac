//! The SRT streamid parser (both forms): never panics, refuses anything longer than
//! `MAX_STREAM_ID_LEN`, and a parsed request written back in the `publish:`/`read:` form parses
//! to the same request (round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_ingest::srt::streamid::{Mode, StreamIdRequest, MAX_STREAM_ID_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = StreamIdRequest::parse(data) else { return };
    assert!(data.len() <= MAX_STREAM_ID_LEN);
    let mode = match request.mode {
        Mode::Publish => "publish",
        Mode::Read => "read",
    };
    let text = format!("{mode}:{}/{}", request.app, request.key);
    assert_eq!(StreamIdRequest::parse(text.as_bytes()), Ok(request));
});
