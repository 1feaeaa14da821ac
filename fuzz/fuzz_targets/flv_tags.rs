//! FLV tag bodies and the codec configs inside them: parse never panics, and whatever parses
//! as a coded frame survives mux → parse unchanged (round trip). The same bytes also go through
//! the RTMP ingest demuxer (legacy and Enhanced RTMP tags) after an `hvc1` sequence start, and
//! every frame it makes of an Enhanced RTMP tag muxes back into the same frame. hvcC and av1C
//! records from a publisher give a picture size or an error.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rill_media::avc::{annexb_to_avcc, avcc_to_annexb, parse_sps};
use rill_media::flv::{self, AudioTag, AvcPacket, VideoTag};
use rill_ingest::rtmp::demux::{Demuxed, MediaDemuxer};
use rill_media::{AacConfig, AvcConfig, CodecConfig, Frame, MediaTime, TrackId, Tracks};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let _ = AvcConfig::from_record(body.clone());
    let _ = AacConfig::from_asc(body.clone());
    let _ = parse_sps(data);
    // Enhanced RTMP hands these records over as they came; playlists ask them for a size.
    let _ = rill_media::hevc::record_picture_size(data);
    let _ = rill_media::av1::record_picture_size(data);
    let _ = avcc_to_annexb(data, 4);
    let _ = annexb_to_avcc(data);
    let tracks = Tracks {
        video: Some(CodecConfig::Avc(AvcConfig {
            record: Bytes::new(),
            nalu_length_size: 4,
            sps: parse_sps(&[0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10]).unwrap(),
        })),
        audio: Some(CodecConfig::Aac(AacConfig::from_asc(Bytes::from_static(&[0x12, 0x10])).unwrap())),
        encoder: None,
    };
    let reparse = |frame: Frame| {
        let tag = flv::frame_body(&frame, &tracks).expect("AVC/AAC frames mux");
        let mut whole = tag.prefix().to_vec();
        whole.extend_from_slice(&tag.payload);
        Bytes::from(whole)
    };
    if let Ok(VideoTag::Avc { keyframe, packet: AvcPacket::Nalus { composition_time_ms, data } }) =
        flv::parse_video(&body)
    {
        let frame = Frame {
            track: TrackId::VIDEO,
            pts: MediaTime::from_millis(1000 + composition_time_ms as i64),
            dts: MediaTime::from_millis(1000),
            keyframe,
            payload: data.clone(),
        };
        let again = flv::parse_video(&reparse(frame)).unwrap();
        assert_eq!(again, VideoTag::Avc { keyframe, packet: AvcPacket::Nalus { composition_time_ms, data } });
    }
    let mut demux = MediaDemuxer::default();
    let hvc1_start = Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1', 1]);
    let _ = demux.video(0, &hvc1_start);
    let _ = demux.video(1000, &body);
    let _ = demux.audio(1000, &body);
    if let (Ok(Demuxed::Frame(frame)), Some(tracks)) = (demux.video(2000, &body), Some(demux.tracks().clone())) {
        if matches!(tracks.video, Some(CodecConfig::Hevc { .. } | CodecConfig::Av1 { .. })) {
            let tag = flv::frame_body(&frame, &tracks).expect("HEVC/AV1 frames mux");
            let again = Bytes::from([tag.prefix(), &tag.payload[..]].concat());
            let Ok(Demuxed::Frame(back)) = demux.video(2000, &again) else { panic!("muxed frame does not demux") };
            assert_eq!((back.pts, back.dts, back.keyframe, &back.payload), (frame.pts, frame.dts, frame.keyframe, &frame.payload));
        }
    }
    if let Ok(AudioTag::AacRaw(data)) = flv::parse_audio(&body) {
        let t = MediaTime::from_millis(5);
        let frame = Frame { track: TrackId::AUDIO, pts: t, dts: t, keyframe: true, payload: data.clone() };
        assert_eq!(flv::parse_audio(&reparse(frame)).unwrap(), AudioTag::AacRaw(data));
    }
});
