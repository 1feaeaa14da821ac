//! The SRT streamid parser (both forms, with tokens): never panics, refuses anything longer
//! than `MAX_STREAM_ID_LEN`, and a parsed request written back in the `publish:`/`read:` form
//! (its token as `?token=`) parses to the same request (round trip).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_ingest::srt::streamid::{Mode, StreamIdRequest, MAX_STREAM_ID_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = StreamIdRequest::parse(data) else { return };
    assert!(data.len() <= MAX_STREAM_ID_LEN);
    assert!(!request.key.contains('?'));
    let mode = match request.mode {
        Mode::Publish => "publish",
        Mode::Read => "read",
    };
    // A token from the access-control form's `token=` entry may hold what a query cannot.
    if request.token.as_deref().is_some_and(|t| t.contains('&')) {
        return;
    }
    let token = request.token.as_deref().map(|t| format!("?token={t}")).unwrap_or_default();
    let text = format!("{mode}:{}/{}{token}", request.app, request.key);
    assert_eq!(StreamIdRequest::parse(text.as_bytes()), Ok(request));
});
