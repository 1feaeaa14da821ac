//! MPEG-TS demux (what an SRT publisher sends): arbitrary bytes in arbitrary splits through
//! `mpegts::TsDemuxer` with a small PES bound; the ADTS and hvcC parsers on the raw bytes. No
//! panic; a PES never grows past its bound; every frame it produces muxes back through
//! `TsMuxer` (Ok or Err, never a panic) and the muxed bytes are whole, demuxable packets.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rill_media::aac::AdtsHeader;
use rill_media::hevc;
use rill_media::mpegts::{TsDemuxer, TsEvent, TsMuxer, PACKET_SIZE};

const MAX_PES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let _ = AdtsHeader::parse(data);
    let _ = hevc::record_nalus(data);
    let _ = hevc::record_picture_size(data);
    let _ = hevc::sps_picture_size(data);
    if data.len() > 6 {
        let third = data.len() / 3;
        let _ = hevc::build_record(&data[..third], &data[third..2 * third], &data[2 * third..]);
    }
    let Some((&split, rest)) = data.split_first() else { return };
    let chunk = 1 + split as usize * 7;
    let mut demux = TsDemuxer::new(MAX_PES);
    let mut muxer = TsMuxer::default();
    let mut muxable = false;
    let mut out = BytesMut::new();
    let mut frames = 0usize;
    let mut drain = |demux: &mut TsDemuxer, out: &mut BytesMut| {
        while let Some(event) = demux.poll() {
            match event {
                TsEvent::Tracks(tracks) => muxable = muxer.set_tracks(&tracks).is_ok(),
                TsEvent::Frame(frame) => {
                    assert!(frame.payload.len() <= MAX_PES * 2, "frame larger than its PES bound");
                    frames += 1;
                    if muxable {
                        let _ = muxer.push(&frame, out);
                    }
                }
            }
        }
    };
    for piece in rest.chunks(chunk) {
        demux.push(piece);
        drain(&mut demux, &mut out);
    }
    demux.flush();
    drain(&mut demux, &mut out);
    assert_eq!(out.len() % PACKET_SIZE, 0);
    let mut again = TsDemuxer::new(1 << 20);
    again.push(&out);
    again.flush();
    while again.poll().is_some() {}
    assert_eq!(again.stats().sync_losses, 0, "the muxer wrote a packet without a sync byte");
    assert_eq!(again.stats().continuity_errors, 0, "the muxer broke its continuity counters");
    let _ = frames;
});
