//! Arbitrary bytes after the handshake, fed in arbitrary splits, through the chunk decoder,
//! the AMF0 command layer, and (once a publish is accepted) the FLV demux. Must never panic,
//! and must never hold more than the configured limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_ingest::rtmp::demux::MediaDemuxer;
use rill_ingest::rtmp::{ServerSession, SessionConfig, SessionEvent};

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let mut config = SessionConfig::default();
    config.limits.max_message_size = 1 << 16;
    config.limits.max_chunk_size = 1 << 16;
    let mut session = ServerSession::after_handshake(config);
    let mut demux = MediaDemuxer::default();
    let step = split as usize % 64 + 1;
    for piece in data.chunks(step) {
        if session.feed(piece).is_err() {
            return;
        }
        while let Some(event) = session.poll_event() {
            match event {
                SessionEvent::PublishRequested { .. } => session.accept_publish().unwrap(),
                SessionEvent::PlayRequested { .. } => session.accept_play().unwrap(),
                SessionEvent::Video { timestamp, body } => {
                    let _ = demux.video(timestamp, &body);
                }
                SessionEvent::Audio { timestamp, body } => {
                    let _ = demux.audio(timestamp, &body);
                }
                SessionEvent::Metadata { encoder } => demux.set_encoder(encoder),
                SessionEvent::StreamClosed => {}
            }
        }
        let mut out = Vec::new();
        session.take_output(&mut out);
    }
});
