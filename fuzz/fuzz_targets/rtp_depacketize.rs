//! WHIP depacketizing: arbitrary RTP payloads (with fuzzed sequence numbers, timestamps and
//! markers) through the H.264, VP8, VP9 and AV1 depacketizers and the ingest state machine
//! never panic. Every H.264 access unit they produce survives the WHEP packetizer and
//! depacketizes back to the same NAL units (round trip) when they are NAL units an encoder
//! could have written; every VP8/VP9/AV1 frame is bounded, AV1 frames are well-formed OBUs
//! with size fields, and every configuration read from a keyframe (vpcC, av1C) makes an init
//! segment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_media::time::{MediaTime, Timebase};
use rill_media::track::CodecConfig;
use rill_media::{Frame, TrackId};
use rill_media::{av1, vp9};
use rill_webrtc::depacketize::{vp8_keyframe_size, CodedFrame, VideoCodec, VideoDepacketizer};
use rill_webrtc::whep::{AudioSource, Egress};
use rill_webrtc::whip::{H264Depacketizer, Ingest, IngestAction, MAX_ACCESS_UNIT};
use std::time::{Duration, Instant};

const CODECS: [VideoCodec; 3] = [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::Av1];

/// An unsigned LEB128 value and its length.
fn leb128(p: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for (i, b) in p.iter().take(8).enumerate() {
        v |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn check_frame(codec: VideoCodec, f: &CodedFrame) {
    assert!(!f.data.is_empty() && f.data.len() <= MAX_ACCESS_UNIT);
    if codec == VideoCodec::Av1 {
        // OBUs, each with obu_has_size_field and a size that fits; no temporal delimiters.
        let mut rest = &f.data[..];
        while !rest.is_empty() {
            let header = rest[0];
            assert!(header & 0x02 != 0 && header & 0x80 == 0, "OBU header {header:#04x}");
            assert_ne!((header >> 3) & 0x0f, 2, "temporal delimiter kept");
            let head = if header & 0x04 != 0 { 2 } else { 1 };
            let (len, k) = leb128(&rest[head..]).expect("size field");
            rest = &rest[head + k + len..];
        }
    }
    match (&f.config, codec) {
        (None, _) => {}
        (Some(CodecConfig::Vp8 { .. }), VideoCodec::Vp8) => assert!(f.keyframe),
        (Some(c @ CodecConfig::Vp9 { .. }), VideoCodec::Vp9) => {
            assert!(f.keyframe);
            rill_media::cmaf::fmp4::init_segment(1, c).expect("vpcC from a VP9 keyframe makes an init segment");
        }
        (Some(c @ CodecConfig::Av1 { .. }), VideoCodec::Av1) => {
            assert!(f.keyframe);
            rill_media::cmaf::fmp4::init_segment(1, c).expect("av1C from a sequence header makes an init segment");
        }
        (Some(other), codec) => panic!("{codec:?} frame with {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut ingest = Ingest::new(true, true, t0);
    let mut depacketizer = H264Depacketizer::default();
    let mut others = CODECS.map(VideoDepacketizer::new);
    let mut other_ingests = CODECS.map(|c| Ingest::with_video_codec(true, Some(c), true, t0));
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
        for (d, codec) in others.iter_mut().zip(CODECS) {
            if let Some(f) = d.push(seq, ts, marker, payload) {
                check_frame(codec, &f);
            }
        }
        for (other, codec) in other_ingests.iter_mut().zip(CODECS) {
            let actions = if flags & 2 != 0 {
                other.push_audio(now, ts, payload)
            } else {
                other.push_video(now, seq, ts, marker, payload)
            };
            for action in actions {
                match action {
                    IngestAction::Frame(f) if f.is_video() => assert!(!f.payload.is_empty()),
                    IngestAction::SetTracks(t) => {
                        let name = t.video.as_ref().map(|v| v.name());
                        let want = match codec {
                            VideoCodec::Vp8 => "vp8",
                            VideoCodec::Vp9 => "vp9",
                            VideoCodec::Av1 => "av1",
                        };
                        assert_eq!(name, Some(want));
                    }
                    _ => {}
                }
            }
        }
        // The keyframe-header readers on raw bytes.
        let _ = vp8_keyframe_size(payload);
        if let Some(h) = vp9::KeyframeHeader::parse(payload) {
            let vp9 = CodecConfig::Vp9 { record: h.config_record(), size: Some((h.width, h.height)) };
            rill_media::cmaf::fmp4::init_segment(1, &vp9).expect("vpcC makes an init segment");
        }
        if let Ok(record) = av1::config_record(payload) {
            let size = av1::record_picture_size(&record).expect("an av1C we built reads back");
            assert!(size.0 >= 1 && size.1 >= 1);
            rill_media::cmaf::fmp4::init_segment(1, &CodecConfig::Av1 { record }).expect("av1C makes an init segment");
        }
        let _ = rill_media::hevc::sps_picture_size(payload);
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
