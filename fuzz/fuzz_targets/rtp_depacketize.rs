//! WHIP depacketizing: arbitrary RTP payloads (with fuzzed sequence numbers, timestamps and
//! markers) through the H.264 depacketizer and the ingest state machine never panic, and every
//! access unit they produce survives the WHEP packetizer and depacketizes back to the same NAL
//! units (round trip) when they are NAL units an encoder could have written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_media::time::{MediaTime, Timebase};
use rill_media::{Frame, TrackId};
use rill_webrtc::whep::{AudioSource, Egress};
use rill_webrtc::whip::{H264Depacketizer, Ingest, IngestAction};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut ingest = Ingest::new(true, true, t0);
    let mut depacketizer = H264Depacketizer::default();
    let mut units = Vec::new();
    // Packets: [len: u8][flags: u8][seq: u16][ts: u32][payload: len bytes]
    let mut rest = data;
    let mut i = 0u64;
    while rest.len() >= 8 {
        let len = rest[0] as usize;
        let flags = rest[1];
        let seq = u16::from_be_bytes([rest[2], rest[3]]);
        let ts = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let end = (8 + len).min(rest.len());
        let payload = &rest[8..end];
        rest = &rest[end..];
        let now = t0 + Duration::from_millis(i * 10);
        i += 1;
        let marker = flags & 1 != 0;
        if flags & 2 != 0 {
            for action in ingest.push_audio(now, ts, payload) {
                if let IngestAction::Frame(f) = action {
                    assert!(!f.is_video());
                }
            }
        } else {
            for action in ingest.push_video(now, seq, ts, marker, payload) {
                if let IngestAction::Frame(f) = action {
                    assert!(f.is_video() && !f.payload.is_empty());
                }
            }
        }
        if let Some(au) = depacketizer.push(seq, ts, marker, payload) {
            units.push(au);
        }
    }
    // Round trip through the WHEP packetizer (no parameter sets: none are inserted).
    for au in units {
        // What an encoder can produce and the payloader takes as one NAL unit each: slice-type
        // NAL units (no parameter sets, which it holds back for a STAP-A, no AUD/filler, which
        // it drops) without a start-code pattern inside (emulation prevention rules it out).
        let encodable = |n: &bytes::Bytes| {
            matches!(n[0] & 0x1f, 1..=6 | 10 | 11 | 13..=23)
                && n[0] & 0x80 == 0
                && !n.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 3)
        };
        if !au.nalus.iter().all(encodable) {
            continue;
        }
        let mut avcc = Vec::new();
        for nalu in &au.nalus {
            avcc.extend_from_slice(&(nalu.len() as u32).to_be_bytes());
            avcc.extend_from_slice(nalu);
        }
        let mut egress = Egress::new(Some((102, 1)), None, AudioSource::None, 0);
        let t = MediaTime::new(au.rtp_time as i64, Timebase::MPEG);
        let frame = Frame { track: TrackId::VIDEO, pts: t, dts: t, keyframe: true, payload: avcc.into() };
        let packets = egress.frames(&[frame], false);
        let mut back = H264Depacketizer::default();
        let mut got = None;
        for (_, p) in &packets {
            got = back.push(p.header.sequence_number, p.header.timestamp, p.header.marker, &p.payload).or(got);
        }
        let expected = &au.nalus;
        let got = got.expect("a packetized access unit depacketizes");
        assert_eq!(&got.nalus, expected);
    }
});
