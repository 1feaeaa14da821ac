//! Arbitrary bytes from the first byte of a connection (the handshake, then whatever follows).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_ingest::rtmp::{ServerSession, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let mut session = ServerSession::new(SessionConfig::default());
    for piece in data.chunks(700) {
        if session.feed(piece).is_err() {
            return;
        }
        while session.poll_event().is_some() {}
    }
});
