//! Zero-copy proof across the live path: a frame's payload, as the RTMP chunk decoder produced
//! it at ingest, is the very memory that HTTP-FLV and RTMP play hand to the socket writer.

use bytes::Bytes;
use futures_util::StreamExt;
use rill_ingest::rtmp::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, OutHeader};
use rill_ingest::rtmp::demux::{Demuxed, MediaDemuxer};
use rill_media::avc::DecoderConfigRecord;
use rill_media::flv::frame_body;
use rill_media::{Bus, BusConfig, Delivery, PublisherInfo, StreamPath};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

// SPS/PPS of an x264 1280x720 High profile stream.
const SPS: [u8; 25] = [
    0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03,
    0x00, 0x80, 0x00, 0x00, 0x1e, 0x07,
];
const PPS: [u8; 4] = [0x68, 0xeb, 0xe3, 0xcb];

fn within(outer: &Range<*const u8>, piece: &Bytes) -> bool {
    !piece.is_empty() && outer.contains(&piece.as_ptr()) && outer.contains(&piece[piece.len() - 1..].as_ptr())
}

#[tokio::test]
async fn payload_memory_is_shared_from_rtmp_ingest_to_both_egresses() {
    // A publisher's two messages, as RTMP chunks: the AVC sequence header and one IDR frame.
    let mut publisher_side = ChunkEncoder::new(65536);
    let mut wire = Vec::new();
    let record = DecoderConfigRecord::build(&SPS, &PPS).unwrap();
    let video = |timestamp| OutHeader { csid: 6, timestamp, type_id: 9, stream_id: 1 };
    publisher_side.encode(video(0), &[0x17, 0, 0, 0, 0], &record, &mut wire);
    let mut idr = vec![0, 0, 0, 200, 0x65];
    idr.extend((0..199).map(|i| i as u8));
    publisher_side.encode(video(40), &[0x17, 1, 0, 0, 0], &Bytes::from(idr), &mut wire);

    // Ingest: chunk decoder → FLV demux → Bus.
    let mut decoder = ChunkDecoder::new(ChunkLimits::default());
    decoder.set_chunk_size(65536).unwrap();
    decoder.push(&wire.concat());
    let mut demux = MediaDemuxer::default();
    let bus = Bus::new(BusConfig { reconnect_grace: Duration::ZERO, ..Default::default() });
    let path = StreamPath::live("zc").unwrap();
    let publisher = bus.publish(&path, PublisherInfo { protocol: "rtmp", peer: "test".into() }).unwrap();
    let mut http_viewer = bus.subscribe(&path, "http-flv").unwrap();
    let mut rtmp_viewer = bus.subscribe(&path, "rtmp").unwrap();
    let mut ingest_memory = None;
    while let Some(message) = decoder.next_message().unwrap() {
        match demux.video(message.timestamp, &message.payload).unwrap() {
            Demuxed::Frame(frame) => {
                ingest_memory = Some(message.payload.as_ptr_range());
                publisher.set_tracks(demux.tracks().clone());
                publisher.push(frame);
            }
            Demuxed::Config => {}
            other => panic!("{other:?}"),
        }
    }
    drop(publisher);
    let ingest_memory = ingest_memory.expect("the IDR message was decoded");

    // HTTP-FLV: the body pieces the HTTP server writes (vectored) include the ingest memory.
    let pieces: Vec<Bytes> = rill_relay::http_flv::body(
        std::mem::replace(&mut http_viewer, bus.subscribe(&path, "spare").unwrap()),
        Arc::default(),
    )
    .map(|p| p.unwrap())
    .collect()
    .await;
    let shared: Vec<_> = pieces.iter().filter(|p| within(&ingest_memory, p)).collect();
    assert_eq!(shared.len(), 1, "exactly one piece, the payload, points into ingest memory");
    assert_eq!(shared[0].len(), 204, "the whole AVCC payload, uncopied");

    // RTMP play: the chunk pieces written to the socket include the ingest memory.
    let Delivery::Tracks(tracks) = rtmp_viewer.recv().await.unwrap() else { panic!("tracks first") };
    let Delivery::Frames(frames) = rtmp_viewer.recv().await.unwrap() else { panic!("then frames") };
    let body = frame_body(&frames[0], &tracks).unwrap();
    let mut player_side = ChunkEncoder::new(128);
    let mut out = Vec::new();
    player_side.encode(video(body.timestamp_ms), body.prefix(), &body.payload, &mut out);
    let chunked: usize = out.iter().filter(|p| within(&ingest_memory, p)).map(|p| p.len()).sum();
    assert_eq!(chunked, 204, "every payload byte is sent from ingest memory, split across chunks");
}
